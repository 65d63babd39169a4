"""Deletion: input photos after the guide's ``retention_days``, and everything on a member's opt-out.

Files go from disk inside the same transaction that marks their rows, so a failed commit leaves
rows that the next purge finds (already gone: counted as missing) rather than files nobody tracks.
Deleted rows lose their path too: a photo's file name can be personal. Audit entries hold ids only.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone

from sqlalchemy import select
from sqlalchemy.engine import Connection

from .approvals import ApprovalsLayer
from .paths import remove_path, resolve_stored
from .records import PurgeSummary
from .schema import files, members, submissions

log = logging.getLogger(__name__)


class RetentionLayer(ApprovalsLayer):
    def _delete_files(self, conn: Connection, rows: list, summary: PurgeSummary) -> None:
        now = self.now()
        for row in rows:
            try:
                gone = remove_path(resolve_stored(row.path, self.root)) if row.path else False
            except (OSError, ValueError) as e:
                # Keep the row live so the next purge retries; report the id, never the name.
                summary.errors.append(f"file {row.id}: {type(e).__name__}")
                continue
            conn.execute(files.update().where(files.c.id == row.id).values(deleted_at=now, path=None))
            summary.file_ids.append(row.id)
            if gone:
                summary.files_deleted += 1
            else:
                summary.files_missing += 1

    def purge_expired(self, now: datetime | None = None, actor: str = "system") -> PurgeSummary:
        """Delete input photos older than their team guide's (current) ``retention_days``."""
        if now is not None and now.tzinfo is None:
            raise ValueError("purge_expired needs an aware datetime (naive times are ambiguous)")
        now = (now or self.now()).astimezone(timezone.utc)
        summary = PurgeSummary(reason="retention")
        with self._write() as conn:
            guides = conn.execute(select(members.c.guide_name).distinct()).scalars().all()
            for name in guides:
                days = self._current_guide(conn, name).guide.governance.retention_days
                cutoff = now - timedelta(days=days)
                rows = conn.execute(
                    select(files.c.id, files.c.path, files.c.member_id)
                    .join(members, members.c.id == files.c.member_id)
                    .where(members.c.guide_name == name, files.c.kind == "input",
                           files.c.deleted_at.is_(None), files.c.created_at <= cutoff)
                    .order_by(files.c.id)).all()
                self._delete_files(conn, rows, summary)
                summary.members += sorted({r.member_id for r in rows} - set(summary.members))
            if summary.file_ids or summary.errors:
                self._audit(conn, actor, "retention.purge", "files:input", files=summary.file_ids,
                            deleted=summary.files_deleted, missing=summary.files_missing,
                            errors=len(summary.errors))
        if summary.file_ids:
            log.info("retention purge: %d input file(s) deleted, %d already gone",
                     summary.files_deleted, summary.files_missing)
        return summary

    def opt_out(self, member_id: int, actor: str) -> PurgeSummary:
        """The member leaves: delete every file the store knows of for them and their member folder,
        withdraw consent, erase their name, email and username, and withdraw their submissions."""
        summary = PurgeSummary(reason="opt_out", members=[member_id])
        with self._write() as conn:
            member = self._member(conn, member_id, lock=True)
            rows = conn.execute(select(files.c.id, files.c.path).where(
                files.c.member_id == member_id, files.c.deleted_at.is_(None)).order_by(files.c.id)).all()
            self._delete_files(conn, rows, summary)
            folder = self.member_dir(member_id)
            try:
                if remove_path(folder):
                    summary.folders_removed += 1
            except OSError as e:
                summary.errors.append(f"member folder: {type(e).__name__}")
            if member.active:
                self._withdraw(conn, member, actor)
            conn.execute(submissions.update().where(
                submissions.c.member_id == member_id, submissions.c.status != "withdrawn").values(
                status="withdrawn", decided_at=self.now()))
            # The row stays (ids in consent records and the audit log point at it); the person does not.
            conn.execute(members.update().where(members.c.id == member_id).values(
                first="", last="", email=None, external_username=None,
                opted_out_at=member.opted_out_at or self.now()))
            self._audit(conn, actor, "member.opt_out", f"member:{member_id}", files=summary.file_ids,
                        deleted=summary.files_deleted, missing=summary.files_missing,
                        folders=summary.folders_removed, errors=len(summary.errors))
        if self.engine.dialect.name == "sqlite":
            self._checkpoint()
        log.info("opt-out of member %d: %d file(s) deleted", member_id, summary.files_deleted)
        return summary

    def _checkpoint(self) -> None:
        # Fold the WAL into the database file (secure_delete then zeroes the erased row), so old page
        # images holding the erased name do not linger in team.db-wal.
        raw = self.engine.raw_connection()  # driver-level autocommit: a checkpoint cannot run in a transaction
        try:
            cur = raw.cursor()
            cur.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            cur.close()
        finally:
            raw.close()
