"""Training settings: :class:`TrainConfig` and its per-set-size defaults, the result type, the
user-facing error, and a rough wall-time estimate."""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field

import torch


# Defaults by number of photos: (upper bound inclusive, overrides). Steps grow with the set so
# every photo is seen ~40-50 times; rank stays at 16 (enough for one identity).
DEFAULTS_BY_SET_SIZE: tuple[tuple[int, dict], ...] = (
    (12, {"rank": 16, "alpha": 16, "steps": 500, "learning_rate": 1e-4}),
    (20, {"rank": 16, "alpha": 16, "steps": 800, "learning_rate": 1e-4}),
    (10**9, {"rank": 32, "alpha": 32, "steps": 1200, "learning_rate": 8e-5}),
)


class TrainingError(Exception):
    """A training run that cannot start or continue; the message is safe to show to a user."""


@dataclass
class TrainConfig:
    base: str
    photos: list = field(default_factory=list)
    out_dir: str = "lora_out"
    trigger: str = "sks"
    class_word: str = "person"
    rank: int = 16
    alpha: float = 16
    learning_rate: float = 1e-4
    steps: int = 500
    resolution: int = 1024
    batch_size: int = 1
    seed: int = 0
    face_crop_share: float = 0.5
    mixed_precision: str = "bf16"  # "no" | "fp16" | "bf16"; CPU always trains in float32
    chunk_steps: int | None = None  # None: no step limit per call
    chunk_seconds: float | None = None  # None: no time limit per call
    # Also checkpoint every this many steps inside a call (None: only at the end of the call), so
    # a process killed mid-chunk (ZeroGPU abort, OOM killer) loses at most this many steps.
    checkpoint_steps: int | None = None
    # "auto": on a GPU, recompute activations only when memory is short (see loop.py); "on" / "off"
    # force it. It trades time for memory and does not change what is learned.
    gradient_checkpointing: str = "auto"

    # Fields that do not change the weights (where and how long one call runs).
    _NOT_HASHED = ("photos", "out_dir", "chunk_steps", "chunk_seconds", "checkpoint_steps", "gradient_checkpointing")

    def __post_init__(self):
        if self.mixed_precision not in ("no", "fp16", "bf16"):
            raise ValueError("mixed_precision must be 'no', 'fp16' or 'bf16'")
        if self.gradient_checkpointing not in ("auto", "on", "off"):
            raise ValueError("gradient_checkpointing must be 'auto', 'on' or 'off'")
        if not 0.0 <= self.face_crop_share <= 1.0:
            raise ValueError("face_crop_share must be within [0, 1]")
        if self.checkpoint_steps is not None and self.checkpoint_steps < 1:
            raise ValueError("checkpoint_steps must be >= 1 (or None)")
        if self.steps < 1 or self.rank < 1 or self.batch_size < 1 or self.resolution < 8:
            raise ValueError("steps, rank, batch_size must be >= 1 and resolution >= 8")

    @property
    def caption(self) -> str:
        return f"a photo of {self.trigger} {self.class_word}"

    def photo_hashes(self) -> list[str]:
        return [_sha256_file(p) for p in self.photos]

    def public_dict(self) -> dict:
        """The config without photo paths or the output folder (safe for training.json)."""
        d = {k: v for k, v in dataclasses.asdict(self).items() if k not in ("photos", "out_dir")}
        d["photo_sha256"] = self.photo_hashes()
        return d

    def config_hash(self) -> str:
        """sha256 over everything that affects the weights (photo contents, not their paths)."""
        d = {k: v for k, v in dataclasses.asdict(self).items() if k not in self._NOT_HASHED}
        d["photo_sha256"] = self.photo_hashes()
        return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()


def config_for(n_photos: int, **overrides) -> TrainConfig:
    """A config whose rank/alpha/steps/lr come from :data:`DEFAULTS_BY_SET_SIZE`; overrides win."""
    values: dict = {}
    for upper, defaults in DEFAULTS_BY_SET_SIZE:
        if n_photos <= upper:
            values.update(defaults)
            break
    values.update(overrides)
    values.setdefault("base", "stabilityai/stable-diffusion-xl-base-1.0")
    return TrainConfig(**values)


@dataclass
class TrainResult:
    status: str  # "finished" | "paused" (chunk limit reached) | "cancelled"
    step: int
    steps: int
    loss: float | None
    out_dir: str
    lora_path: str | None = None
    seconds: float = 0.0
    skipped_photos: int = 0
    message: str = ""



def _sha256_file(path) -> str:
    h = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    except OSError:
        return "unreadable"
    return h.hexdigest()




# Seconds per training step at 1024 px, batch 1, SDXL UNet with a rank-16 LoRA in bf16, measured on
# an H200: this loop 0.61 s (benchmarks/gpu_train_full.py), the bare step 0.43-0.51 s, or 1.25 s with
# gradient checkpointing (benchmarks/gpu_bench.py). CPU is impractically slow, ~30 s per step.
_STEP_SECONDS_1024 = {"cuda": 0.61, "cuda_checkpointing": 1.35, "cpu": 30.0}
_LOAD_SECONDS = {"cuda": 40.0, "cpu": 60.0}  # loading the pipeline
_PER_PHOTO_SECONDS = {"cuda": 0.6, "cpu": 6.0}  # decode, face box, VAE encode of two samples


def estimate_seconds(config: TrainConfig, device: str | torch.device = "cuda", steps: int | None = None) -> float:
    """Rough wall time of one :func:`train` call, e.g. for ZeroGPU's ``duration``.

    ``load + photos * per_photo + steps * step_1024 * (resolution/1024)^2 * batch_size``, where
    ``steps`` defaults to one chunk (``chunk_steps``, else all steps) and ``chunk_seconds`` caps
    the loop part. Add a margin for the final save (a few seconds).
    """
    kind = "cuda" if torch.device(device).type == "cuda" else "cpu"
    if steps is None:
        steps = min(config.steps, config.chunk_steps or config.steps)
    # "auto" is estimated without checkpointing: a large GPU (ZeroGPU's H200 slice) leaves it off,
    # and a chunk that runs slower still stops in time through chunk_seconds.
    step_kind = "cuda_checkpointing" if kind == "cuda" and config.gradient_checkpointing == "on" else kind
    loop = steps * _STEP_SECONDS_1024[step_kind] * (config.resolution / 1024) ** 2 * config.batch_size
    if config.chunk_seconds is not None:
        loop = min(loop, float(config.chunk_seconds) + _STEP_SECONDS_1024[step_kind])
    return _LOAD_SECONDS[kind] + len(config.photos) * _PER_PHOTO_SECONDS[kind] + loop + 5.0

