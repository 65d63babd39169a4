"""Per-request LoRA isolation: load one adapter under a unique name, drop it afterwards."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from .models import _looks_like_path
from .spec import ModelUnavailable

_ADAPTER_PREFIX = "req_"


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
            pipe.load_lora_weights(str(path.parent), weight_name=path.name, adapter_name=adapter)
        elif path.is_dir():
            pipe.load_lora_weights(str(path), adapter_name=adapter)
        elif _looks_like_path(lora):
            raise ModelUnavailable(f"LoRA not found at {path}")
        else:
            pipe.load_lora_weights(lora, adapter_name=adapter)
    except ModelUnavailable:
        raise
    except (OSError, ValueError, EnvironmentError) as exc:
        raise ModelUnavailable(f"cannot load LoRA {lora!r}: {type(exc).__name__}: {exc}") from exc
