"""`TableStore`: one table of dagfleet's in the instance's database, and its engine.

The publish history (`history.store`) and the audit log (`audit.store`) each keep
one table in the same database (`history.store.database_url` picks it). What they
share lives here: the engine with the connect timeouts for SQLite and PostgreSQL,
`where()` for messages, `_exists()` for reads that must never create anything, and
`create()`, which tolerates another writer (a second process, another fleet on the
same PostgreSQL) creating the table at the same moment. A subclass names its table
in the class attribute `table` and adds its own reads and writes.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, ClassVar

import sqlalchemy as sa


class TableStore:
    """`table` in and out of one database; safe to share between threads."""

    table: ClassVar[sa.Table]

    def __init__(self, url: sa.URL | str) -> None:
        self.url = sa.make_url(url)
        self.sqlite = self.url.get_backend_name() == "sqlite"
        args: dict[str, Any] = {"timeout": 30} if self.sqlite else {"connect_timeout": 10}
        self.engine = sa.create_engine(self.url, connect_args=args, pool_pre_ping=True)
        self._created = False
        self._lock = threading.Lock()

    def where(self) -> str:
        """Where the table is kept, without any password."""
        return self.url.render_as_string(hide_password=True)

    def _exists(self) -> bool:
        """Whether the table is there, creating nothing (not even the SQLite file)."""
        if self._created:
            return True
        if self.sqlite and not Path(self.url.database or "").exists():
            return False
        with self.engine.connect() as conn:
            self._created = sa.inspect(conn).has_table(self.table.name)
        return self._created

    def create(self) -> None:
        """The table with its indexes (and the SQLite file), unless they exist."""
        with self._lock:
            if self._created:
                return
            if self.sqlite:
                Path(self.url.database or "").parent.mkdir(parents=True, exist_ok=True)
            try:
                self.table.create(self.engine, checkfirst=True)
            except sa.exc.DBAPIError:
                # Another writer (a second process, another fleet on the same PostgreSQL)
                # created it between the check and the CREATE: fine if it is there now.
                with self.engine.connect() as conn:
                    if not sa.inspect(conn).has_table(self.table.name):
                        raise
            self._created = True

    def close(self) -> None:
        """Let go of the engine's connections."""
        self.engine.dispose()
