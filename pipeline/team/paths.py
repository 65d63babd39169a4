"""Where team files live, and safe conversion between stored (relative) paths and real ones.

The store keeps paths relative to the data folder, so the folder can move; every path it deletes is
resolved and checked to lie inside the data folder first, so a tampered row cannot delete elsewhere.
"""
from __future__ import annotations

import shutil
from pathlib import Path, PurePosixPath

from ..session import data_root

TEAM_DIRNAME = "team"


def team_root(root: Path | None = None) -> Path:
    return (root or data_root()) / TEAM_DIRNAME


def member_dir(member_id: int, root: Path | None = None, create: bool = False) -> Path:
    """``<data_root>/team/members/<member_id>/``: the one place other code writes a member's files
    (embeddings, LoRAs, outputs). An opt-out removes this folder whole."""
    if not isinstance(member_id, int) or isinstance(member_id, bool) or member_id < 1:
        raise ValueError("member_id must be a positive integer")
    path = team_root(root) / "members" / str(member_id)
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path


def to_relative(path: str | Path, root: Path) -> str:
    """A stored path: relative to ``root``, POSIX style. Refuses anything outside ``root``."""
    p = Path(path)
    base = root.resolve()
    absolute = (p if p.is_absolute() else base / p).resolve()
    try:
        rel = absolute.relative_to(base)
    except ValueError:
        raise ValueError("a team file must lie inside the data folder") from None
    if not rel.parts:
        raise ValueError("a team file cannot be the data folder itself")
    return PurePosixPath(*rel.parts).as_posix()


def resolve_stored(rel: str, root: Path) -> Path:
    """The real path of a stored relative path, refusing ones that escape the data folder."""
    base = root.resolve()
    absolute = (base / rel).resolve()
    if absolute == base or base not in absolute.parents:
        raise ValueError("stored path points outside the data folder")
    return absolute


def remove_path(path: Path) -> bool:
    """Delete a file or a folder tree; True when something was there."""
    if path.is_symlink() or path.is_file():
        path.unlink(missing_ok=True)
        return True
    if path.is_dir():
        shutil.rmtree(path)
        return True
    return False
