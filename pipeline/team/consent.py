"""Consent: explicit, per notice version and per use, given by the member themself.

Records are append-only in spirit: giving, changing and withdrawing consent each add a row; the
newest row is the member's current state. :meth:`ConsentLayer.require_consent` is the guard that
standardisation, approval and export call before touching anything about a member.
"""
from __future__ import annotations

import json
import logging

from sqlalchemy import select
from sqlalchemy.engine import Connection

from .errors import ConsentError
from .members import MembersLayer
from .records import ConsentRecord, Member
from .schema import consents

log = logging.getLogger(__name__)


def _record(row) -> ConsentRecord:
    return ConsentRecord(row.id, row.member_id, row.guide_name, row.action, row.notice_version,
                         tuple(json.loads(row.uses)), row.given_by, row.created_at)


def _is_member_themself(member: Member, given_by: int | str) -> bool:
    """``given_by`` names the member: their id, ``member:<id>``, or their Hub username."""
    if isinstance(given_by, bool):
        return False
    if isinstance(given_by, int):
        return given_by == member.id
    if given_by == f"member:{member.id}":
        return True
    return bool(member.external_username) and given_by.lower() == (member.external_username or "").lower()


class ConsentLayer(MembersLayer):
    def record_consent(self, member_id: int, notice_version: str, uses: list[str] | tuple[str, ...], *,
                       given_by: int | str) -> ConsentRecord:
        """Record consent the member gave themself, to the guide's current notice, for the listed uses.

        Refused (ConsentError) when someone else gives it, when no use is ticked (consent is never
        implied or pre-ticked), for a use the guide does not offer, or for a notice that is not current.
        """
        uses_t = tuple(sorted(set(uses or ())))
        if not uses_t:
            raise ConsentError("consent needs at least one use ticked by the member; none was given")
        with self._write() as conn:
            member = self._member(conn, member_id, lock=True)
            self._require_active(member)
            if not _is_member_themself(member, given_by):
                raise ConsentError(f"only member {member_id} can give their consent; it cannot be given for them")
            guide = self._current_guide(conn, member.guide_name).guide
            if notice_version != guide.governance.notice_version:
                raise ConsentError(f"notice {notice_version!r} is not the current notice "
                                   f"{guide.governance.notice_version!r} of {guide.key}")
            if unknown := [u for u in uses_t if u not in guide.governance.uses]:
                raise ConsentError(f"{guide.key} does not offer the use(s) {', '.join(unknown)}")
            record = self._add_consent(conn, member, "given", notice_version, uses_t, f"member:{member.id}")
        log.info("consent recorded for member %d (notice %s)", member_id, notice_version)
        return record

    def withdraw_consent(self, member_id: int, actor: str) -> ConsentRecord:
        """Withdrawal is a new record, never a deletion: the history of what was agreed stays."""
        with self._write() as conn:
            member = self._member(conn, member_id, lock=True)
            return self._withdraw(conn, member, actor)

    def _withdraw(self, conn: Connection, member: Member, actor: str) -> ConsentRecord:
        current = self._latest(conn, member.id)
        notice = current.notice_version if current else "-"
        return self._add_consent(conn, member, "withdrawn", notice, (), actor)

    def _add_consent(self, conn: Connection, member: Member, action: str, notice: str,
                     uses: tuple[str, ...], given_by: str) -> ConsentRecord:
        now = self.now()
        cid = conn.execute(consents.insert().values(
            member_id=member.id, guide_name=member.guide_name, action=action, notice_version=notice,
            uses=json.dumps(list(uses)), given_by=given_by, created_at=now)).inserted_primary_key[0]
        self._audit(conn, given_by, f"consent.{action}", f"member:{member.id}", consent=cid, notice=_code(notice),
                    uses=list(uses))
        return ConsentRecord(cid, member.id, member.guide_name, action, notice, uses, given_by, now)

    @staticmethod
    def _latest(conn: Connection, member_id: int) -> ConsentRecord | None:
        row = conn.execute(select(consents).where(consents.c.member_id == member_id)
                           .order_by(consents.c.id.desc()).limit(1)).first()
        return _record(row) if row else None

    def consent_history(self, member_id: int) -> list[ConsentRecord]:
        with self._read() as conn:
            rows = conn.execute(select(consents).where(consents.c.member_id == member_id)
                                .order_by(consents.c.id)).all()
        return [_record(r) for r in rows]

    def current_consent(self, member_id: int) -> ConsentRecord | None:
        with self._read() as conn:
            return self._latest(conn, member_id)

    def _require_consent(self, conn: Connection, member_id: int, use: str | None) -> Member:
        member = self._member(conn, member_id)
        if not member.active:
            raise ConsentError(f"member {member_id} has opted out")
        current = self._latest(conn, member_id)
        if current is None or not current.given:
            raise ConsentError(f"member {member_id} has not consented (or has withdrawn consent)")
        guide = self._current_guide(conn, member.guide_name).guide
        if current.notice_version != guide.governance.notice_version:
            raise ConsentError(f"member {member_id} consented to notice {current.notice_version!r}; "
                               f"{guide.key} needs consent to notice {guide.governance.notice_version!r}")
        if use is not None and use not in current.uses:
            raise ConsentError(f"member {member_id} has not consented to the use {use!r}")
        return member

    def require_consent(self, member_id: int, use: str | None = None) -> Member:
        """The guard: raise ConsentError unless the member currently consents to the guide's current
        notice (and to ``use`` when given; ``None`` means "processing for any consented use")."""
        with self._read() as conn:
            return self._require_consent(conn, member_id, use)

    def has_consent(self, member_id: int, use: str | None = None) -> bool:
        try:
            self.require_consent(member_id, use)
        except ConsentError:
            return False
        return True


def _code(notice: str) -> str:
    # Notice versions are short labels ("2026-11"); keep only safe characters for the audit log.
    return "".join(c if c.isalnum() or c in "_-:@+=" else "_" for c in notice)[:32] or "-"
