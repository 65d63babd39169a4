"""Connections: a URL in, a SQLAlchemy engine out, with the schema in place.

Default: SQLite at ``<data_root>/team/team.db``. PostgreSQL: ``postgresql+psycopg://user@host/db``
(plain ``postgresql://`` is read as psycopg 3, the driver this project installs).
"""
from __future__ import annotations

import logging
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, select
from sqlalchemy.engine import URL, Engine, make_url

from .errors import SchemaError
from .paths import team_root
from .schema import SCHEMA_VERSION, metadata, protect_tables, schema_version

log = logging.getLogger(__name__)

DB_URL_ENV = "HEADSHOT_TEAM_DB"  # optional: a URL that overrides the default SQLite file
BUSY_TIMEOUT_MS = 5000  # wait this long for another writer rather than failing with "database is locked"


def default_url(root: Path | None = None) -> str:
    if env := os.environ.get(DB_URL_ENV):
        return env
    return f"sqlite:///{team_root(root) / 'team.db'}"


def normalize_url(url: str | URL) -> URL:
    u = make_url(url)
    if u.drivername in ("postgresql", "postgres"):
        u = u.set(drivername="postgresql+psycopg")
    if u.get_backend_name() not in ("sqlite", "postgresql"):
        raise ValueError(f"the team store supports sqlite and postgresql URLs, not {u.get_backend_name()}")
    return u


def _sqlite_on_connect(dbapi_conn: Any, _record: Any) -> None:
    # Autocommit at the driver level, so PRAGMAs apply now and SQLAlchemy's "begin" event owns BEGIN.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    try:
        cur.execute("PRAGMA journal_mode=WAL")  # readers do not block the writer
        cur.execute("PRAGMA foreign_keys=ON")  # SQLite ships with them off, per connection
        cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA secure_delete=ON")  # erased personal data is overwritten, not left in free pages
    finally:
        cur.close()


def _sqlite_on_begin(conn: Any) -> None:
    # Writers take the lock up front (IMMEDIATE): no deadlock when two upgrade from read to write.
    mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
    conn.exec_driver_sql(f"BEGIN {mode}")


def make_engine(url: str | URL | None = None, root: Path | None = None) -> Engine:
    u = normalize_url(url or default_url(root))
    if u.get_backend_name() == "sqlite":
        if u.database and u.database != ":memory:":
            Path(u.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(u)
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_on_begin)
    else:
        engine = create_engine(u, pool_pre_ping=True)
    return engine


def ensure_schema(engine: Engine) -> None:
    """Create what is missing (idempotent) and record the schema version."""
    with engine.connect().execution_options(sqlite_begin="IMMEDIATE") as conn, conn.begin():
        metadata.create_all(conn)
        protect_tables(conn)
        versions = conn.execute(select(schema_version.c.version)).scalars().all()
        newest = max(versions, default=0)
        if newest > SCHEMA_VERSION:
            raise SchemaError(f"the team database has schema {newest}; this code knows up to {SCHEMA_VERSION}")
        if SCHEMA_VERSION not in versions:
            conn.execute(schema_version.insert().values(version=SCHEMA_VERSION,
                                                        applied_at=datetime.now(timezone.utc)))
    log.debug("team store schema %d ready on %s", SCHEMA_VERSION, engine.url.get_backend_name())
