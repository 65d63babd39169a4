"""Team store for governance: style guide versions, members, consent, submissions, approvals,
an append-only audit log, and retention (SQLite by default, PostgreSQL by URL; SQLAlchemy Core).

Modules: ``errors``, ``records`` (dataclasses), ``schema`` (tables, append-only triggers), ``db``
(URLs, engines, schema on open), ``paths`` (member folders, stored paths), then the store's layers
``base`` → ``audit`` → ``guides`` → ``members`` → ``consent`` → ``submissions`` → ``approvals`` →
``retention``, assembled in ``store``; ``sweep`` (app start) and ``cli`` (``python -m pipeline team``).
No Gradio here.

Names are imported lazily, so registering the CLI (``pipeline.team.cli``) costs nothing until a
team command actually runs (SQLAlchemy and the guide schema take ~0.4 s to import).
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "db": ("DB_URL_ENV", "default_url"),
    "errors": ("ConsentError", "DecisionError", "GuideVersionError", "NotApprover", "NotFound", "SchemaError",
               "TeamError"),
    "paths": ("member_dir", "team_root"),
    "records": ("AuditEntry", "ConsentRecord", "GuideVersion", "Member", "PurgeSummary", "RedoItem",
                "RestandardizePlan", "StoredFile", "Submission"),
    "store": ("TeamStore", "open_store"),
    "sweep": ("sweep_at_start",),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = [
    "DB_URL_ENV", "AuditEntry", "ConsentError", "ConsentRecord", "DecisionError", "GuideVersion",
    "GuideVersionError", "Member", "NotApprover", "NotFound", "PurgeSummary", "RedoItem", "RestandardizePlan",
    "SchemaError", "StoredFile", "Submission", "TeamError", "TeamStore", "default_url", "member_dir",
    "open_store", "sweep_at_start", "team_root",
]
assert sorted(__all__) == sorted(_WHERE)

if TYPE_CHECKING:
    from .db import DB_URL_ENV, default_url
    from .errors import (
        ConsentError, DecisionError, GuideVersionError, NotApprover, NotFound, SchemaError, TeamError,
    )
    from .paths import member_dir, team_root
    from .records import (
        AuditEntry, ConsentRecord, GuideVersion, Member, PurgeSummary, RedoItem, RestandardizePlan, StoredFile,
        Submission,
    )
    from .store import TeamStore, open_store
    from .sweep import sweep_at_start


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
