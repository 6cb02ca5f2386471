"""The audit log: who changed or ran what, when and where (written by the front door and the service)."""
