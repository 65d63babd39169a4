"""The store's foundation: engine, data folder, clock and transactions. Layers build on it."""
from __future__ import annotations

from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator

from sqlalchemy.engine import URL, Connection, Engine

from ..session import data_root
from .db import ensure_schema, make_engine
from .paths import member_dir

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class StoreBase:
    def __init__(self, url: str | URL | None = None, root: Path | None = None, clock: Clock = utcnow,
                 engine: Engine | None = None):
        """Open (and if needed create) the team store.

        ``root`` is the data folder (default ``$HEADSHOT_DATA_DIR``); ``url`` the database (default the
        SQLite file in it); ``clock`` gives "now" (aware UTC) and exists so retention can be tested.
        """
        self.root = Path(root) if root is not None else data_root()
        self.engine = engine or make_engine(url, self.root)
        self.clock = clock
        ensure_schema(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> "StoreBase":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def now(self) -> datetime:
        now = self.clock()
        if now.tzinfo is None:
            raise ValueError("the store clock must return an aware datetime")
        return now.astimezone(timezone.utc)

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        """One write transaction; on SQLite it takes the write lock at BEGIN."""
        with self.engine.connect().execution_options(sqlite_begin="IMMEDIATE") as conn, conn.begin():
            yield conn

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn, conn.begin():
            yield conn

    def member_dir(self, member_id: int, create: bool = False) -> Path:
        """The per-member folder other code writes into; removed whole on opt-out."""
        return member_dir(member_id, self.root, create=create)
