"""Append-only audit log: who did what to which id, when. Never content, prompts or file names.

There is no update or delete API, and database triggers refuse UPDATE/DELETE on the table. Details
are checked on the way in: scalars and id lists only, and no string that looks like a path or a file.
"""
from __future__ import annotations

import json
import re
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from .base import StoreBase
from .records import AuditEntry
from .schema import audit_log

MAX_DETAILS_CHARS = 2000
_TEXT_OK = re.compile(r"^[A-Za-z0-9_@:=+-]{0,64}$")  # ids, codes, name@version; no '/', '.', spaces
_ACTION_OK = re.compile(r"^[a-z][a-z_]*(\.[a-z_]+)*$")  # dotted codes, e.g. consent.given
_ACTOR_OK = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,99}$")  # Hub usernames may contain dots


def check_details(details: dict[str, Any]) -> str:
    """The details as JSON, or ValueError when they could carry personal content."""
    if not isinstance(details, dict):
        raise ValueError("audit details must be a dict")
    for key, value in details.items():
        if not isinstance(key, str) or not _TEXT_OK.match(key):
            raise ValueError(f"audit detail key {key!r} is not a plain identifier")
        values = value if isinstance(value, (list, tuple)) else [value]
        for v in values:
            if v is None or isinstance(v, (bool, int, float)):
                continue
            if isinstance(v, str) and _TEXT_OK.match(v):
                continue
            raise ValueError(f"audit detail {key!r} must be numbers, ids or codes (no text, paths or file names)")
    text = json.dumps(details, sort_keys=True, separators=(",", ":"))
    if len(text) > MAX_DETAILS_CHARS:
        raise ValueError(f"audit details are limited to {MAX_DETAILS_CHARS} characters")
    return text


def _check_label(label: str, what: str, pattern: re.Pattern[str] = _TEXT_OK) -> str:
    if not isinstance(label, str) or not label or not pattern.match(label):
        raise ValueError(f"audit {what} must be a short id or username (letters, digits, _@:=+-)")
    return label


class AuditLayer(StoreBase):
    def _audit(self, conn: Connection, actor: str, action: str, target: str, **details: Any) -> None:
        """Append one entry inside the caller's transaction: the action and its record commit together."""
        conn.execute(audit_log.insert().values(
            at=self.now(), actor=_check_label(actor, "actor", _ACTOR_OK),
            action=_check_label(action, "action", _ACTION_OK), target=_check_label(target, "target"),
            details=check_details(details)))

    def audit(self, actor: str, action: str, target: str, **details: Any) -> None:
        """Append one entry for an action done outside the store (e.g. a library export)."""
        with self._write() as conn:
            self._audit(conn, actor, action, target, **details)

    def audit_entries(self, target: str | None = None, action: str | None = None, limit: int | None = None,
                      ) -> list[AuditEntry]:
        """Read the log, oldest first (filtered by exact target or action)."""
        q = select(audit_log).order_by(audit_log.c.id)
        if target is not None:
            q = q.where(audit_log.c.target == target)
        if action is not None:
            q = q.where(audit_log.c.action == action)
        with self._read() as conn:
            rows = conn.execute(q).all()
        entries = [AuditEntry(r.id, r.at, r.actor, r.action, r.target, json.loads(r.details)) for r in rows]
        return entries[-limit:] if limit else entries
