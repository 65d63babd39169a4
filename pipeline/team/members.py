"""Team members: who a portrait is of. Names and email stay in this table and nowhere else."""
from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.engine import Connection

from .errors import NotFound, TeamError
from .guides import GuidesLayer
from .records import Member
from .schema import members

_USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,95}$")


def _member(row) -> Member:
    return Member(row.id, row.guide_name, row.first, row.last, row.email, row.external_username,
                  row.created_at, row.opted_out_at)


def _clean(value: str | None, what: str, limit: int, required: bool) -> str | None:
    value = (value or "").strip()
    if not value:
        if required:
            raise ValueError(f"a member needs a {what}")
        return None
    if len(value) > limit or any(ord(c) < 32 for c in value):
        raise ValueError(f"the {what} is too long or has control characters")
    return value


class MembersLayer(GuidesLayer):
    def add_member(self, guide_name: str, first: str, last: str, actor: str, email: str | None = None,
                   external_username: str | None = None) -> Member:
        first_c = _clean(first, "first name", 200, True)
        last_c = _clean(last, "last name", 200, True)
        email_c = _clean(email, "email", 320, False)
        if email_c is not None and "@" not in email_c:
            raise ValueError("the email has no @")
        user = _clean(external_username, "username", 96, False)
        if user is not None and not _USERNAME.match(user):
            raise ValueError("the username has characters a Hub username cannot have")
        with self._write() as conn:
            self._current_guide(conn, guide_name)  # members join a stored guide (NotFound otherwise)
            now = self.now()
            member_id = conn.execute(members.insert().values(
                guide_name=guide_name, first=first_c, last=last_c, email=email_c, external_username=user,
                created_at=now)).inserted_primary_key[0]
            self._audit(conn, actor, "member.add", f"member:{member_id}", guide=guide_name)
        return Member(member_id, guide_name, first_c or "", last_c or "", email_c, user, now, None)

    def _member(self, conn: Connection, member_id: int, lock: bool = False) -> Member:
        q = select(members).where(members.c.id == member_id)
        row = conn.execute(q.with_for_update() if lock else q).first()
        if row is None:
            raise NotFound(f"no member {member_id}")
        return _member(row)

    def member(self, member_id: int) -> Member:
        with self._read() as conn:
            return self._member(conn, member_id)

    def members(self, guide_name: str, include_opted_out: bool = False) -> list[Member]:
        q = select(members).where(members.c.guide_name == guide_name).order_by(members.c.id)
        if not include_opted_out:
            q = q.where(members.c.opted_out_at.is_(None))
        with self._read() as conn:
            return [_member(r) for r in conn.execute(q).all()]

    @staticmethod
    def _require_active(member: Member) -> None:
        if not member.active:
            raise TeamError(f"member {member.id} has opted out; nothing more is done for them")
