"""The team store: one object with the whole governance API.

Layers, each in its own module and each building on the one before: base (engine, clock,
transactions) → audit → guides → members → consent → submissions → approvals → retention.
"""
from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import URL

from .base import Clock, utcnow
from .retention import RetentionLayer


class TeamStore(RetentionLayer):
    """Style guide versions, members, consent, submissions, approvals, audit and retention.

    ``TeamStore()`` opens ``<data_root>/team/team.db`` (SQLite, WAL); pass
    ``url="postgresql+psycopg://..."`` for PostgreSQL. The schema is created on open.
    """


def open_store(url: str | URL | None = None, root: Path | None = None, clock: Clock = utcnow) -> TeamStore:
    return TeamStore(url=url, root=root, clock=clock)
