"""The audit log: who changed or ran what, when and where.

Written by the front door (launches, terminations) and the service (repositories,
promotions, rollbacks); read by `dagfleet audit` and GET /api/v1/audit.
"""
