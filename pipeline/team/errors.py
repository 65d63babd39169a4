"""Team store errors: each names what was refused and why, without personal data in the message."""
from __future__ import annotations


class TeamError(Exception):
    """Base class for every refusal by the team store."""


class NotFound(TeamError, LookupError):
    """An id or guide name the store does not know."""


class ConsentError(TeamError):
    """A member has no current, explicit consent for what was asked (or consent was refused)."""


class NotApprover(TeamError, PermissionError):
    """The user is not in the style guide's approvers list."""


class DecisionError(TeamError):
    """An approval decision that the queue's rules refuse (already decided, reason missing...)."""


class GuideVersionError(TeamError, ValueError):
    """A guide save that would rewrite or go behind an existing version."""


class SchemaError(TeamError):
    """The database was written by a newer schema than this code understands."""
