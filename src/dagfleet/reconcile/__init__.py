"""The reconcile loops: one per location, level-triggered, every step safe to repeat."""
