"""Seed 001's medallion pipeline: bronze -> silver -> gold, streamed with Polars.

Storage comes from the environment (DAGFLEET_STORAGE_ROOT), so the same code
runs on a laptop directory, a mounted volume or an S3 prefix.
"""
