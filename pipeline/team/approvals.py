"""The approval queue, and re-standardising members against a new guide version.

Only users in the guide's ``approvers`` (current version) decide. A decision is final until an
approver explicitly re-opens the item. Approved portraits keep the guide version they were made
with: a new guide version changes nothing until someone asks for :meth:`restandardize`.
"""
from __future__ import annotations

import logging
from typing import Callable, Iterable

from sqlalchemy import select
from sqlalchemy.engine import Connection

from .errors import ConsentError, DecisionError, NotApprover
from .paths import resolve_stored
from .records import RedoItem, RestandardizePlan, Submission
from .schema import files, submission_files, submissions
from .submissions import SubmissionsLayer

log = logging.getLogger(__name__)

MAX_REASON_CHARS = 1000
Redo = Callable[[RedoItem], Iterable[str]]  # does the pixel work; returns the output paths


class ApprovalsLayer(SubmissionsLayer):
    def _require_approver(self, conn: Connection, guide_name: str, user: str) -> None:
        guide = self._current_guide(conn, guide_name).guide
        if not user or user.lower() not in {a.lower() for a in guide.governance.approvers}:
            raise NotApprover(f"{user!r} is not an approver of {guide.key}")

    def is_approver(self, guide_name: str, user: str) -> bool:
        with self._read() as conn:
            try:
                self._require_approver(conn, guide_name, user)
            except NotApprover:
                return False
        return True

    def queue(self, guide_name: str) -> list[Submission]:
        """Pending submissions, oldest first."""
        return self.submissions(guide_name=guide_name, status="pending")

    def approve(self, submission_id: int, reviewer: str, reason: str | None = None) -> Submission:
        return self._decide(submission_id, reviewer, "approved", reason)

    def reject(self, submission_id: int, reviewer: str, reason: str) -> Submission:
        if not (reason or "").strip():
            raise DecisionError("a rejection needs a reason the member can act on")
        return self._decide(submission_id, reviewer, "rejected", reason)

    def reopen(self, submission_id: int, reviewer: str, reason: str) -> Submission:
        """Put a decided item back in the queue (the only way to change a decision)."""
        if not (reason or "").strip():
            raise DecisionError("re-opening a decision needs a reason")
        with self._write() as conn:
            sub = self._submission(conn, submission_id, lock=True)
            self._require_approver(conn, sub.guide_name, reviewer)
            if sub.status not in ("approved", "rejected"):
                raise DecisionError(f"submission {submission_id} is {sub.status}; only decided items re-open")
            conn.execute(submissions.update().where(submissions.c.id == submission_id).values(
                status="pending", reviewer=None, reason=None, decided_at=None))
            self._audit(conn, reviewer, "approval.reopen", f"submission:{submission_id}", was=sub.status)
            return self._submission(conn, submission_id)

    def _decide(self, submission_id: int, reviewer: str, status: str, reason: str | None) -> Submission:
        reason = (reason or "").strip() or None
        if reason and len(reason) > MAX_REASON_CHARS:
            raise DecisionError(f"keep the reason under {MAX_REASON_CHARS} characters")
        with self._write() as conn:
            sub = self._submission(conn, submission_id, lock=True)  # row lock: two reviewers cannot both decide
            self._require_approver(conn, sub.guide_name, reviewer)
            if sub.status != "pending":
                raise DecisionError(f"submission {submission_id} is already {sub.status}; re-open it first")
            if status == "approved":
                self._require_consent(conn, sub.member_id, None)  # never publish without current consent
                if not sub.outputs:
                    raise DecisionError(f"submission {submission_id} has no output portrait to approve")
            conn.execute(submissions.update().where(submissions.c.id == submission_id).values(
                status=status, reviewer=reviewer, reason=reason, decided_at=self.now()))
            # The reason text stays in the submission row; the audit log only says a decision was made.
            self._audit(conn, reviewer, f"approval.{status}",
                        f"submission:{submission_id}", guide=sub.guide_key)
            return self._submission(conn, submission_id)

    def restandardize(self, guide_name: str, member_ids: Iterable[int], actor: str,
                      redo: Redo | None = None) -> RestandardizePlan:
        """Create new pending submissions for the chosen members against the guide's current version.

        Each reuses the inputs of the member's newest submission that still has them. Members without
        consent, opted out, in another team or whose inputs are purged are skipped with a reason code.
        With ``redo``, each item's pixel work runs right away and its outputs are recorded. Existing
        (approved) submissions are left exactly as they are.
        """
        plan = RestandardizePlan(guide_key="")
        with self._write() as conn:
            guide = self._current_guide(conn, guide_name)
            plan.guide_key = guide.key
            for member_id in dict.fromkeys(member_ids):
                try:
                    member = self._require_consent(conn, member_id, None)
                except ConsentError:
                    plan.skipped[member_id] = "no_consent"
                    continue
                if member.guide_name != guide_name:
                    plan.skipped[member_id] = "other_team"
                    continue
                input_ids = self._latest_live_inputs(conn, member_id)
                if not input_ids:
                    plan.skipped[member_id] = "inputs_purged"
                    continue
                sid = self._new_submission(conn, member_id, guide.name, guide.version, [i for i, _ in input_ids],
                                           actor)
                plan.items.append(RedoItem(sid, member_id, guide.key,
                                           tuple(resolve_stored(p, self.root) for _, p in input_ids)))
            self._audit(conn, actor, "guide.restandardize", f"guide:{guide.key}",
                        submissions=[i.submission_id for i in plan.items], skipped=len(plan.skipped))
        if redo is not None:
            for item in plan.items:
                self.add_outputs(item.submission_id, list(redo(item)), actor)
        log.info("restandardize %s: %d new submission(s), %d skipped", plan.guide_key, len(plan.items),
                 len(plan.skipped))
        return plan

    @staticmethod
    def _latest_live_inputs(conn: Connection, member_id: int) -> list[tuple[int, str]]:
        rows = conn.execute(
            select(submission_files.c.submission_id, files.c.id, files.c.path)
            .join(files, files.c.id == submission_files.c.file_id)
            .join(submissions, submissions.c.id == submission_files.c.submission_id)
            .where(submissions.c.member_id == member_id, submission_files.c.role == "input",
                   files.c.deleted_at.is_(None))
            .order_by(submission_files.c.submission_id.desc(), files.c.id)).all()
        if not rows:
            return []
        newest = rows[0].submission_id
        return [(r.id, r.path) for r in rows if r.submission_id == newest]
