"""Per-request LoRA isolation: load one adapter under a unique name, drop it afterwards."""
from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Sequence

from .models import _looks_like_path
from .spec import ModelUnavailable

_ADAPTER_PREFIX = "req_"
LORA_FILE = "pytorch_lora_weights.safetensors"  # diffusers' default name (== pipeline.train.LORA_FILE)
TRAINING_JSON = "training.json"

log = logging.getLogger(__package__)
# (path, size, mtime_ns) -> sha256: a LoRA is hashed once per change, not on every request.
_HASHES: dict[tuple[str, int, int], str] = {}


class LoraCorrupted(ModelUnavailable):
    """A local LoRA whose bytes differ from the sha256 its training run recorded."""


def _sha256(path: Path) -> str:
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _HASHES:
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
        _HASHES[key] = h.hexdigest()
    return _HASHES[key]


def verify_lora(weights: Path) -> None:
    """Refuse a LoRA file whose sha256 differs from the one in ``training.json`` beside it.

    A folder without ``training.json`` (or one that records no hash for this file) is loaded as
    is: nothing says what it should contain. A mismatch is a damaged or swapped file; loading it
    would silently give wrong (or garbage) faces.
    """
    report = weights.parent / TRAINING_JSON
    if not report.is_file():
        return
    try:
        info = json.loads(report.read_text())
    except (OSError, ValueError):
        log.warning("ignoring unreadable %s beside a LoRA", TRAINING_JSON)
        return
    if not isinstance(info, dict) or info.get("lora_file", weights.name) != weights.name or not info.get("lora_sha256"):
        return
    if _sha256(weights) != info["lora_sha256"]:
        raise LoraCorrupted(f"The LoRA weights ({weights.name}) do not match the sha256 recorded in "
                            f"{TRAINING_JSON} when training finished: the file is damaged or was replaced. "
                            "It was not loaded. Train again, or download the LoRA again from your Hub repo.")


def adapters_present(pipe) -> list[str]:
    """All adapter names loaded into any LoRA-capable component of ``pipe``."""
    names: list[str] = []
    for component in getattr(pipe, "_lora_loadable_modules", ()):
        model = getattr(pipe, component, None)
        names += list(getattr(model, "peft_config", {}) or {})
    return sorted(set(names))


def _drop_adapters(pipe, names: Sequence[str]) -> None:
    if names:
        pipe.delete_adapters(list(names))
    if not adapters_present(pipe):
        # Unwrap the (now empty) LoRA layers so the next plain request runs the bare base model.
        pipe.unload_lora_weights()


def _load_lora(pipe, lora: str, adapter: str) -> None:
    path = Path(lora).expanduser()
    try:
        if path.is_file():
            verify_lora(path)
            pipe.load_lora_weights(str(path.parent), weight_name=path.name, adapter_name=adapter)
        elif path.is_dir():
            if (path / LORA_FILE).is_file():
                verify_lora(path / LORA_FILE)
            pipe.load_lora_weights(str(path), adapter_name=adapter)
        elif _looks_like_path(lora):
            raise ModelUnavailable(f"LoRA not found at {path}")
        else:
            pipe.load_lora_weights(lora, adapter_name=adapter)
    except ModelUnavailable:
        raise
    except (OSError, ValueError, EnvironmentError) as exc:
        raise ModelUnavailable(f"cannot load LoRA {lora!r}: {type(exc).__name__}: {exc}") from exc
