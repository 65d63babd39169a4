"""Submissions and the files the store knows about each member.

A submission is one member's input photo(s) standardised against one guide version
(``name@version``, fixed at creation), with its outputs and approval status. Every file is recorded
relative to the data folder, so retention and opt-out can find and delete it later.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

from sqlalchemy import select
from sqlalchemy.engine import Connection

from .consent import ConsentLayer
from .errors import NotFound
from .paths import resolve_stored, to_relative
from .records import FILE_KINDS, StoredFile, Submission
from .schema import files, submission_files, submissions


def _file(row) -> StoredFile:
    return StoredFile(row.id, row.member_id, row.kind, row.path, row.created_at, row.deleted_at)


class SubmissionsLayer(ConsentLayer):
    # --- files -------------------------------------------------------------------------------
    def _add_file(self, conn: Connection, member_id: int, kind: str, path: str | Path) -> int:
        if kind not in FILE_KINDS:
            raise ValueError(f"file kind must be one of {', '.join(FILE_KINDS)}")
        rel = to_relative(path, self.root)
        return conn.execute(files.insert().values(member_id=member_id, kind=kind, path=rel,
                                                  created_at=self.now())).inserted_primary_key[0]

    def register_file(self, member_id: int, kind: str, path: str | Path, actor: str) -> StoredFile:
        """Record a file made from a member's photos (embedding, LoRA folder...) so purges find it.
        Needs current consent: making it is processing."""
        with self._write() as conn:
            self._require_consent(conn, member_id, None)
            fid = self._add_file(conn, member_id, kind, path)
            self._audit(conn, actor, "file.add", f"member:{member_id}", file=fid, kind=kind)
            return _file(conn.execute(select(files).where(files.c.id == fid)).one())

    def member_files(self, member_id: int, include_deleted: bool = False) -> list[StoredFile]:
        q = select(files).where(files.c.member_id == member_id).order_by(files.c.id)
        if not include_deleted:
            q = q.where(files.c.deleted_at.is_(None))
        with self._read() as conn:
            return [_file(r) for r in conn.execute(q).all()]

    def path_of(self, stored: StoredFile) -> Path:
        if stored.path is None:
            raise NotFound(f"file {stored.id} was deleted")
        return resolve_stored(stored.path, self.root)

    # --- submissions -------------------------------------------------------------------------
    def submit(self, member_id: int, inputs: Iterable[str | Path], actor: str) -> Submission:
        """A new pending submission against the guide's current version. Needs current consent."""
        inputs = list(inputs)
        if not inputs:
            raise ValueError("a submission needs at least one input photo")
        with self._write() as conn:
            member = self._require_consent(conn, member_id, None)
            guide = self._current_guide(conn, member.guide_name)
            file_ids = [self._add_file(conn, member_id, "input", p) for p in inputs]
            sid = self._new_submission(conn, member_id, guide.name, guide.version, file_ids, actor)
            return self._submission(conn, sid)

    def _new_submission(self, conn: Connection, member_id: int, guide_name: str, version: int,
                        input_ids: list[int], actor: str) -> int:
        sid = conn.execute(submissions.insert().values(
            member_id=member_id, guide_name=guide_name, guide_version=version, status="pending",
            created_by=actor, created_at=self.now())).inserted_primary_key[0]
        conn.execute(submission_files.insert(), [{"submission_id": sid, "file_id": f, "role": "input"}
                                                 for f in input_ids])
        self._audit(conn, actor, "submission.create", f"submission:{sid}", member=member_id,
                    guide=f"{guide_name}@{version}", inputs=input_ids)
        return sid

    def add_outputs(self, submission_id: int, outputs: Iterable[str | Path], actor: str) -> Submission:
        """Record the standardised portraits of a submission (the pixel work happens elsewhere)."""
        with self._write() as conn:
            sub = self._submission(conn, submission_id, lock=True)
            self._require_consent(conn, sub.member_id, None)
            ids = [self._add_file(conn, sub.member_id, "output", p) for p in outputs]
            if ids:
                conn.execute(submission_files.insert(), [{"submission_id": submission_id, "file_id": f,
                                                          "role": "output"} for f in ids])
            self._audit(conn, actor, "submission.outputs", f"submission:{submission_id}", files=ids)
            return self._submission(conn, submission_id)

    def _submission(self, conn: Connection, submission_id: int, lock: bool = False) -> Submission:
        q = select(submissions).where(submissions.c.id == submission_id)
        row = conn.execute(q.with_for_update() if lock else q).first()
        if row is None:
            raise NotFound(f"no submission {submission_id}")
        links = conn.execute(
            select(submission_files.c.role, files.c.path)
            .join(files, files.c.id == submission_files.c.file_id)
            .where(submission_files.c.submission_id == submission_id, files.c.deleted_at.is_(None))
            .order_by(files.c.id)).all()
        return Submission(
            row.id, row.member_id, row.guide_name, row.guide_version, row.status, row.created_by, row.created_at,
            row.reviewer, row.reason, row.decided_at,
            inputs=tuple(p for role, p in links if role == "input"),
            outputs=tuple(p for role, p in links if role == "output"))

    def submission(self, submission_id: int) -> Submission:
        with self._read() as conn:
            return self._submission(conn, submission_id)

    def submissions(self, guide_name: str | None = None, status: str | None = None,
                    member_id: int | None = None) -> list[Submission]:
        q = select(submissions.c.id).order_by(submissions.c.id)
        if guide_name is not None:
            q = q.where(submissions.c.guide_name == guide_name)
        if status is not None:
            q = q.where(submissions.c.status == status)
        if member_id is not None:
            q = q.where(submissions.c.member_id == member_id)
        with self._read() as conn:
            return [self._submission(conn, sid) for sid in conn.execute(q).scalars().all()]
