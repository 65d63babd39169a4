"""Per-session lineage: which result came from which, stored in the session folder."""
from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any, Mapping

from ..durable import write_atomic
from .run import Result
from .spec import LINEAGE_FILE, GenerationSpec


class Lineage:
    """Per-session history: which result came from which, by varying what. Stored as
    ``<session_dir>/lineage.json`` (written atomically); nothing is kept at module level."""

    def __init__(self, session_dir: str | Path):
        self.path = Path(session_dir) / LINEAGE_FILE
        self._lock = threading.Lock()
        self._entries: dict[str, dict[str, Any]] = {}
        if self.path.is_file():
            data = json.loads(self.path.read_text())
            self._entries = {e["id"]: e for e in data.get("entries", [])}

    def record(self, result: Result, parent_id: str | None = None, field_name: str | None = None,
               value: Any = None, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Add one result; ``extra`` keeps what the spec alone does not (e.g. the prompt edits that
        a later iteration must reuse to keep everything but one field locked)."""
        with self._lock:
            if parent_id is not None and parent_id not in self._entries:
                raise KeyError(f"unknown parent result {parent_id!r}")
            entry = {
                "id": result.id, "parent": parent_id, "field": field_name, "value": value,
                "spec_id": result.spec.spec_id(), "seed": result.seed, "spec": result.spec.to_dict(),
                "image": result.image_path.name if result.image_path else None, "created": time.time(),
                "extra": dict(extra or {}),
            }
            self._entries[result.id] = entry
            self._save()
            return dict(entry)

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(self.path, json.dumps({"entries": list(self._entries.values())}, indent=1).encode())

    def __contains__(self, result_id: str) -> bool:
        return result_id in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def ids(self) -> list[str]:
        """Every recorded result id, oldest first."""
        return sorted(self._entries, key=lambda i: self._entries[i]["created"])

    def get(self, result_id: str) -> dict[str, Any]:
        return dict(self._entries[result_id])

    def parent(self, result_id: str) -> str | None:
        return self._entries[result_id]["parent"]

    def children(self, result_id: str) -> list[str]:
        return [e["id"] for e in self._entries.values() if e["parent"] == result_id]

    def ancestry(self, result_id: str) -> list[str]:
        """``result_id`` and its ancestors, newest first (the UI's "step back" path)."""
        chain, seen = [], set()
        current: str | None = result_id
        while current is not None and current not in seen:
            seen.add(current)
            chain.append(current)
            current = self._entries[current]["parent"]
        return chain

    def spec(self, result_id: str) -> GenerationSpec:
        return GenerationSpec.from_dict(self._entries[result_id]["spec"])
