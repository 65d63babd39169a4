"""Plain records the store returns. Dataclasses, JSON-friendly through ``to_dict``."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Any

from ..presets.styleguide import StyleGuide, parse_style_guide

SUBMISSION_STATUSES = ("pending", "approved", "rejected", "withdrawn")
FILE_KINDS = ("input", "output", "embedding", "lora", "other")


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


class _Record:
    def to_dict(self) -> dict[str, Any]:
        return _jsonable(asdict(self))  # type: ignore[call-overload]


@dataclass(frozen=True)
class GuideVersion(_Record):
    name: str
    version: int
    yaml: str
    sha256: str
    created_by: str
    created_at: datetime

    @property
    def key(self) -> str:
        return f"{self.name}@{self.version}"

    @cached_property
    def guide(self) -> StyleGuide:
        # Stored text was validated on save; parsing again keeps one source of truth (the YAML).
        return parse_style_guide(self.yaml, f"stored guide {self.key}")

    def to_dict(self) -> dict[str, Any]:
        return _jsonable({"name": self.name, "version": self.version, "sha256": self.sha256,
                          "created_by": self.created_by, "created_at": self.created_at, "key": self.key})


@dataclass(frozen=True)
class Member(_Record):
    id: int
    guide_name: str
    first: str
    last: str
    email: str | None
    external_username: str | None
    created_at: datetime
    opted_out_at: datetime | None

    @property
    def active(self) -> bool:
        return self.opted_out_at is None


@dataclass(frozen=True)
class ConsentRecord(_Record):
    id: int
    member_id: int
    guide_name: str
    action: str  # "given" or "withdrawn"
    notice_version: str
    uses: tuple[str, ...]
    given_by: str
    created_at: datetime

    @property
    def given(self) -> bool:
        return self.action == "given"


@dataclass(frozen=True)
class StoredFile(_Record):
    id: int
    member_id: int
    kind: str
    path: str | None  # relative to the data folder; None once deleted (the name is personal too)
    created_at: datetime
    deleted_at: datetime | None


@dataclass(frozen=True)
class Submission(_Record):
    id: int
    member_id: int
    guide_name: str
    guide_version: int
    status: str
    created_by: str
    created_at: datetime
    reviewer: str | None = None
    reason: str | None = None
    decided_at: datetime | None = None
    inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()

    @property
    def guide_key(self) -> str:
        return f"{self.guide_name}@{self.guide_version}"


@dataclass(frozen=True)
class AuditEntry(_Record):
    id: int
    at: datetime
    actor: str
    action: str
    target: str
    details: dict[str, Any]


@dataclass(frozen=True)
class RedoItem(_Record):
    """One member to standardise again: the new pending submission and the inputs to use."""
    submission_id: int
    member_id: int
    guide_key: str
    inputs: tuple[Path, ...]


@dataclass
class RestandardizePlan(_Record):
    guide_key: str
    items: list[RedoItem] = field(default_factory=list)
    skipped: dict[int, str] = field(default_factory=dict)  # member id -> reason code


@dataclass
class PurgeSummary(_Record):
    """What a purge deleted. Counts and ids only: never file names."""
    reason: str  # "retention" or "opt_out"
    files_deleted: int = 0
    files_missing: int = 0  # already gone from disk; rows marked anyway
    file_ids: list[int] = field(default_factory=list)
    folders_removed: int = 0
    members: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def merge(self, other: "PurgeSummary") -> None:
        self.files_deleted += other.files_deleted
        self.files_missing += other.files_missing
        self.file_ids += other.file_ids
        self.folders_removed += other.folders_removed
        self.members += [m for m in other.members if m not in self.members]
        self.errors += other.errors
