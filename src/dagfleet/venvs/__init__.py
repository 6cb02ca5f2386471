"""Python environments: one uv virtualenv per distinct dependency set, shared by locations."""
