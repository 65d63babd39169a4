"""Base-model loading: device/dtype defaults and the per-process :class:`PipelineCache`."""
from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .spec import BASE_MODEL_ENV, GenerationSpec, ModelUnavailable, default_base_model

log = logging.getLogger(__package__)


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def default_dtype(device: str) -> torch.dtype:
    if str(device).startswith("cuda"):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


def _hub_offline() -> bool:
    try:
        from huggingface_hub import constants

        if constants.HF_HUB_OFFLINE:
            return True
    except ImportError:  # pragma: no cover
        pass
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def _looks_like_path(model: str) -> bool:
    return (os.path.isabs(model) or model.startswith((".", "~")) or "\\" in model
            or model.count("/") != 1 or Path(model).expanduser().exists())


@dataclass
class _Entry:
    pipe: Any
    lock: threading.Lock
    model_id: str
    load_s: float
    scheduler: Any = None  # the model's own scheduler, restored for requests that name none

    def __post_init__(self):
        self.scheduler = self.pipe.scheduler

    def scheduler_for(self, spec: "GenerationSpec"):
        if spec.scheduler is None:
            return self.scheduler
        import diffusers

        cls = getattr(diffusers, spec.scheduler, None)
        if cls is None or not hasattr(cls, "from_config"):
            raise ValueError(f"unknown scheduler {spec.scheduler!r} in diffusers {diffusers.__version__}")
        return cls.from_config(self.scheduler.config, **spec.scheduler_options)


class PipelineCache:
    """Loads each base model once per process and serialises jobs per pipeline.

    Keyed by (model id, dtype, device). Loading happens under one lock, so two first requests for
    the same model load it once. Use :meth:`job` to run work on a pipeline: it holds that pipeline's
    lock, because LoRA loading mutates the shared object.
    """

    def __init__(self, device: str | None = None, dtype: torch.dtype | None = None):
        self.device = device or default_device()
        self.dtype = dtype or default_dtype(self.device)
        self._entries: dict[tuple[str, str, str], _Entry] = {}
        self._load_lock = threading.Lock()

    def _key(self, model: str) -> tuple[str, str, str]:
        return (model, str(self.dtype), str(self.device))

    def loaded(self) -> list[str]:
        return [k[0] for k in self._entries]

    def entry(self, model: str | None = None) -> _Entry:
        model = model or default_base_model()
        key = self._key(model)
        found = self._entries.get(key)
        if found is not None:
            return found
        with self._load_lock:
            found = self._entries.get(key)
            if found is None:
                t0 = time.perf_counter()
                pipe = self._load(model)
                found = _Entry(pipe, threading.Lock(), model, time.perf_counter() - t0)
                self._entries[key] = found
                log.info("loaded base model %s in %.1f s", model, found.load_s)
            return found

    def get(self, model: str | None = None):
        return self.entry(model).pipe

    def _load(self, model: str):
        from diffusers import DiffusionPipeline

        offline = _hub_offline()
        if _looks_like_path(model):
            folder = Path(model).expanduser()
            if not (folder / "model_index.json").is_file():
                raise ModelUnavailable(
                    f"no diffusers model at {folder} (model_index.json missing). Set {BASE_MODEL_ENV} "
                    "or --base to a local folder in diffusers layout, or to a Hub id while online.")
            source = str(folder)
        else:
            source = model
        try:
            pipe = DiffusionPipeline.from_pretrained(source, dtype=self.dtype)
        except Exception as exc:  # hub/offline errors come in many types (OSError, HfHubHTTPError, ...)
            hint = ("HF_HUB_OFFLINE is set and the model is not in the local cache: " if offline else "")
            raise ModelUnavailable(
                f"cannot load base model {model!r}: {hint}{type(exc).__name__}. Set {BASE_MODEL_ENV} "
                "(or --base) to a local diffusers folder, or go online (unset HF_HUB_OFFLINE) so the "
                "Hub id can be downloaded.") from exc
        pipe = pipe.to(self.device)
        pipe.set_progress_bar_config(disable=True)
        return pipe


_DEFAULT_CACHE: PipelineCache | None = None
_DEFAULT_CACHE_LOCK = threading.Lock()


def default_cache() -> PipelineCache:
    """The process-wide cache (holds model weights only, never user data)."""
    global _DEFAULT_CACHE
    with _DEFAULT_CACHE_LOCK:
        if _DEFAULT_CACHE is None:
            _DEFAULT_CACHE = PipelineCache()
        return _DEFAULT_CACHE
