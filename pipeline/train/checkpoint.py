"""Checkpoint files on disk: their names, a sha256 manifest that must match before anything is
loaded, recovery from a crash between renames, and leftover temp folders."""
from __future__ import annotations

import hashlib
import io
import json
import shutil
from pathlib import Path

import torch

from .config import TrainingError

CHECKPOINT = "checkpoint"
MANIFEST = "manifest.json"  # sha256 of every checkpoint file, written after them
CHECKPOINT_FILES = ("lora.safetensors", "optimizer.pt", "rng.pt", "state.json")
TMP_PREFIX = f".{CHECKPOINT}.tmp-"  # temp folders (checkpoint or LoRA being written); never final names
OLD_CHECKPOINT = f".{CHECKPOINT}.old"


def torch_bytes(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def verify_checkpoint(ckpt: str | Path) -> dict[str, bytes]:
    """The checkpoint's files as bytes, each checked against the sha256 in its manifest.

    Raises :class:`TrainingError` (nothing is loaded) when the manifest is missing or unreadable, a
    file is missing, or a file's bytes differ from the recorded hash (disk corruption, a copy cut
    short, an edit). There is no fallback to an older checkpoint: only one is kept, and silently
    training on from somewhere else would hide the damage.
    """
    ckpt = Path(ckpt)
    fix = ("It was not loaded. Delete the checkpoint folder and train again (resume=False), "
           "or use another output folder.")
    try:
        manifest = json.loads((ckpt / MANIFEST).read_text())
        recorded = manifest["sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        raise TrainingError(f"The training checkpoint has no readable integrity manifest ({MANIFEST}), "
                            f"so it cannot be trusted. {fix}") from None
    files: dict[str, bytes] = {}
    for name in CHECKPOINT_FILES:
        try:
            data = (ckpt / name).read_bytes()
        except OSError:
            raise TrainingError(f"The training checkpoint is incomplete: {name} is missing. {fix}") from None
        if hashlib.sha256(data).hexdigest() != recorded.get(name):
            raise TrainingError(f"The training checkpoint is damaged: {name} does not match the sha256 "
                                f"recorded when it was saved. {fix}")
        files[name] = data
    return files


def read_checkpoint_state(out_dir: Path) -> dict | None:
    """The verified checkpoint's state.json, or None when there is no checkpoint."""
    ckpt = out_dir / CHECKPOINT
    old = out_dir / OLD_CHECKPOINT
    if not ckpt.exists() and old.exists():  # a crash between the two renames: the old one is whole
        old.rename(ckpt)
    if not ckpt.exists():
        return None
    return json.loads(verify_checkpoint(ckpt)["state.json"])


def remove_stale_temp(out_dir: Path) -> None:
    """Temp folders left by a process killed mid-write (never under a final name)."""
    for stale in out_dir.glob(f"{TMP_PREFIX}*"):
        shutil.rmtree(stale, ignore_errors=True)
