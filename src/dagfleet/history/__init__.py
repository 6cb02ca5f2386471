"""The publish history: every sync attempt of every location, kept in the instance's database.

`store.py` owns the table (`dagfleet_publish_attempts`) in PostgreSQL when the
fleet's instance uses it, else SQLite at `.dagfleet/history.db`. `recorder.py`
subscribes to the reconcile loops' EventBus and writes attempts on its own
thread, so a slow or unreachable database never holds up a sync. `models.py`
is what the API and CLI show. Import from the modules: `store` pulls in
SQLAlchemy, which the CLI's start-up must not pay for.
"""
