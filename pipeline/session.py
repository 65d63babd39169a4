"""Per-session working folders: each browser session gets its own, deleted on demand or on expiry.

Folder names are derived from a one-way hash of the session key, so nothing in the path
identifies the user, and one session can never name another's folder.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import time
from pathlib import Path

log = logging.getLogger(__name__)

# Sessions idle longer than this are removed by ``expire``: uploads are never kept for long.
DEFAULT_TTL_SECONDS = 6 * 3600


def data_root() -> Path:
    """Where user data lives: $HEADSHOT_DATA_DIR, else a folder in the system temp dir."""
    return Path(os.environ.get("HEADSHOT_DATA_DIR") or Path(tempfile.gettempdir()) / "headshot-studio")


def safe_filename(name: str, fallback: str = "photo") -> str:
    """A file name with only safe characters, keeping the extension."""
    base = Path(name).name
    stem, suffix = os.path.splitext(base)
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._") or fallback
    suffix = re.sub(r"[^A-Za-z0-9.]", "", suffix)[:8].lower()
    return f"{stem[:80]}{suffix}"


class Session:
    def __init__(self, key: str, root: Path | None = None):
        if not key:
            raise ValueError("A session needs a non-empty key.")
        digest = hashlib.sha256(key.encode()).hexdigest()[:24]
        self.dir = (root or data_root()) / "sessions" / digest

    @property
    def photos_dir(self) -> Path:
        return self.dir / "photos"

    @property
    def previews_dir(self) -> Path:
        return self.dir / "previews"

    @property
    def lora_dir(self) -> Path:
        return self.dir / "lora"

    @property
    def results_dir(self) -> Path:
        return self.dir / "results"

    def selected_photos(self) -> list[Path]:
        """The photos confirmed for training (selection.json), as paths in this session."""
        selection = self.dir / "selection.json"
        if not selection.exists():
            return []
        names = json.loads(selection.read_text()).get("selected", [])
        return [self.photos_dir / n for n in names if (self.photos_dir / n).is_file()]

    def approved(self) -> set[str]:
        """Result ids approved in the Review step (empty until a review approves any)."""
        path = self.dir / "approved.json"
        return set(json.loads(path.read_text())) if path.exists() else set()

    def set_approval(self, result_id: str, approved: bool) -> None:
        ids = self.approved()
        (ids.add if approved else ids.discard)(result_id)
        (self.dir / "approved.json").write_text(json.dumps(sorted(ids)))

    def ensure(self) -> "Session":
        for d in (self.photos_dir, self.previews_dir):
            d.mkdir(parents=True, exist_ok=True)
        os.utime(self.dir)
        return self

    def add_photos(self, paths: list[str | Path], move: bool = True) -> list[Path]:
        """Bring uploads into this session's folder under unique safe names.

        ``move`` removes the web server's temporary copy, so a later delete leaves nothing behind.
        """
        self.ensure()
        stored: list[Path] = []
        taken = {p.name for p in self.photos_dir.iterdir()}
        for src in map(Path, paths):
            name = safe_filename(src.name)
            stem, suffix = os.path.splitext(name)
            n = 1
            while name in taken:
                n += 1
                name = f"{stem}_{n}{suffix}"
            taken.add(name)
            dst = self.photos_dir / name
            if move:
                shutil.move(str(src), dst)
            else:
                shutil.copyfile(src, dst)
            stored.append(dst)
        return stored

    def photos(self) -> list[Path]:
        return sorted(self.photos_dir.glob("*")) if self.photos_dir.exists() else []

    def clear_photos(self) -> None:
        for d in (self.photos_dir, self.previews_dir):
            shutil.rmtree(d, ignore_errors=True)

    def delete(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


def expire(ttl_seconds: float = DEFAULT_TTL_SECONDS, root: Path | None = None, now: float | None = None) -> int:
    """Delete session folders idle for longer than ``ttl_seconds``; returns how many went."""
    base = (root or data_root()) / "sessions"
    if not base.exists():
        return 0
    now = time.time() if now is None else now
    removed = 0
    for d in base.iterdir():
        try:
            newest = max([d.stat().st_mtime] + [p.stat().st_mtime for p in d.rglob("*")])
        except FileNotFoundError:
            continue
        if now - newest > ttl_seconds:
            shutil.rmtree(d, ignore_errors=True)
            removed += 1
    if removed:
        log.info("expired %d idle session folder(s)", removed)
    return removed
