"""DreamBooth-LoRA training of the UNet, resumable in chunks.

Follows diffusers' ``train_dreambooth_lora_sdxl.py``: a peft LoRA (``to_k/to_q/to_v/to_out.0``,
gaussian init) on the UNet only, VAE latents and text embeddings cached once before the loop,
DDPM noise/timesteps, epsilon or v-prediction MSE, AdamW on the LoRA parameters, grad-norm clip 1.0,
constant learning rate. SDXL and SD 1.x pipelines both work (the SD path simply has no
``text_encoder_2`` / ``add_time_ids``).

Chunks: each :func:`train` call runs at most ``chunk_steps`` steps or ``chunk_seconds`` seconds and
then writes ``out_dir/checkpoint`` atomically (LoRA weights, optimizer state, step, every RNG state,
loss history, config hash). The next call resumes exactly: on CPU with a fixed thread count a run
split into chunks ends at bit-identical weights to an uninterrupted one. All randomness in the loop
(sample order, crop-vs-full choice, noise, timesteps) comes from one dedicated CPU
``torch.Generator`` whose state is checkpointed.

Privacy: logs and ``training.json`` never hold photo paths, pixels or prompts beyond the
trigger/class words; photos are identified by sha256 only.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import os
import random
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from PIL import Image

log = logging.getLogger(__name__)

LORA_TARGETS = ["to_k", "to_q", "to_v", "to_out.0"]
LORA_FILE = "pytorch_lora_weights.safetensors"
CHECKPOINT = "checkpoint"
# SDXL's training buckets (width, height) at 1024; scaled to ``resolution``.
BUCKETS_1024 = ((1024, 1024), (896, 1152), (1152, 896), (832, 1216), (1216, 832))
FACE_EXPAND = 2.2
MAX_GRAD_NORM = 1.0

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

    # Fields that do not change the weights (where and how long one call runs).
    _NOT_HASHED = ("photos", "out_dir", "chunk_steps", "chunk_seconds")

    def __post_init__(self):
        if self.mixed_precision not in ("no", "fp16", "bf16"):
            raise ValueError("mixed_precision must be 'no', 'fp16' or 'bf16'")
        if not 0.0 <= self.face_crop_share <= 1.0:
            raise ValueError("face_crop_share must be within [0, 1]")
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


# --------------------------------------------------------------------------- helpers

def _sha256_file(path) -> str:
    h = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    except OSError:
        return "unreadable"
    return h.hexdigest()


def _versions() -> dict:
    import diffusers
    import peft
    import transformers

    return {"torch": torch.__version__, "diffusers": diffusers.__version__, "peft": peft.__version__,
            "transformers": transformers.__version__}


def pick_device() -> torch.device:
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


def _autocast_dtype(config: TrainConfig, device: torch.device):
    if device.type != "cuda" or config.mixed_precision == "no":
        return None
    return torch.float16 if config.mixed_precision == "fp16" else torch.bfloat16


# Seconds per training step at 1024 px, batch 1, SDXL UNet with LoRA (measured orders of
# magnitude: ~0.4 s on an H100/H200 in bf16; CPU is impractically slow, ~30 s per step).
_STEP_SECONDS_1024 = {"cuda": 0.45, "cpu": 30.0}
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
    loop = steps * _STEP_SECONDS_1024[kind] * (config.resolution / 1024) ** 2 * config.batch_size
    if config.chunk_seconds is not None:
        loop = min(loop, float(config.chunk_seconds) + _STEP_SECONDS_1024[kind])
    return _LOAD_SECONDS[kind] + len(config.photos) * _PER_PHOTO_SECONDS[kind] + loop + 5.0


# --------------------------------------------------------------------------- data

@dataclass
class Sample:
    pixels: torch.Tensor  # 3xHxW in [-1, 1]
    original_size: tuple[int, int]  # (h, w)
    crop_top_left: tuple[int, int]  # (top, left)
    kind: str  # "face" | "full"


def buckets(resolution: int, multiple: int) -> list[tuple[int, int]]:
    """SDXL's (w, h) buckets scaled to ``resolution``, each side a multiple of ``multiple``."""
    out = []
    for w, h in BUCKETS_1024:
        size = tuple(max(multiple, int(round(s * resolution / 1024 / multiple)) * multiple) for s in (w, h))
        if size not in out:
            out.append(size)
    return out


def _to_tensor(img: Image.Image) -> torch.Tensor:
    arr = np.asarray(img.convert("RGB"), dtype=np.float32) / 127.5 - 1.0
    return torch.from_numpy(arr).permute(2, 0, 1).contiguous()


def face_crop_box(face_box, width: int, height: int, expand: float = FACE_EXPAND) -> tuple[int, int, int, int]:
    """A square (left, top, right, bottom) ``expand`` times the face's longer side, centred on the
    face and shifted/shrunk to lie inside the image."""
    x, y, w, h = face_box
    side = min(expand * max(w, h), width, height)
    cx, cy = x + w / 2, y + h / 2
    left = min(max(0.0, cx - side / 2), width - side)
    top = min(max(0.0, cy - side / 2), height - side)
    side_i = int(round(side))
    left_i, top_i = int(round(left)), int(round(top))
    left_i, top_i = min(left_i, width - side_i), min(top_i, height - side_i)
    return left_i, top_i, left_i + side_i, top_i + side_i


def full_sample(img: Image.Image, resolution: int, multiple: int) -> Sample:
    """The whole photo resized to cover the closest bucket, centre-cropped."""
    W, H = img.size
    bw, bh = min(buckets(resolution, multiple), key=lambda b: abs(math.log((b[0] / b[1]) / (W / H))))
    f = max(bw / W, bh / H)
    rw, rh = max(bw, int(round(W * f))), max(bh, int(round(H * f)))
    resized = img.resize((rw, rh), Image.Resampling.LANCZOS)
    left, top = (rw - bw) // 2, (rh - bh) // 2
    crop = resized.crop((left, top, left + bw, top + bh))
    return Sample(_to_tensor(crop), (H, W), (top, left), "full")


def face_sample(img: Image.Image, face_box, resolution: int) -> Sample:
    box = face_crop_box(face_box, *img.size)
    crop = img.crop(box).resize((resolution, resolution), Image.Resampling.LANCZOS)
    side = box[2] - box[0]
    # SDXL micro-conditioning: the crop is the "original" image (its size in source pixels).
    return Sample(_to_tensor(crop), (side, side), (0, 0), "face")


def _detect_face(img: Image.Image):
    """Largest face box (x, y, w, h) in full-image pixels, or None."""
    from .capture import default_analyzer

    W, H = img.size
    f = min(1.0, 1024 / max(W, H))
    small = img if f == 1.0 else img.resize((max(1, round(W * f)), max(1, round(H * f))), Image.Resampling.BILINEAR)
    rows = default_analyzer().detect(np.asarray(small.convert("RGB")))
    if not len(rows):
        return None
    x, y, w, h = (float(v) for v in rows[0][:4])
    sx, sy = W / small.width, H / small.height
    return x * sx, y * sy, w * sx, h * sy


def build_samples(photos: Sequence, resolution: int, multiple: int) -> tuple[list[Sample], int]:
    """Face crops and full-photo samples from the photos; returns (samples, skipped count).

    Photos that fail to decode are skipped (counted, never named). A photo without a detectable
    face contributes only its full sample.
    """
    from .intake import load_full

    samples: list[Sample] = []
    skipped = 0
    for path in photos:
        try:
            img = load_full(path).convert("RGB")
        except Exception as exc:  # IntakeError or anything a broken file throws
            log.debug("photo decode failed: %s", type(exc).__name__)
            skipped += 1
            continue
        try:
            box = _detect_face(img)
        except Exception as exc:
            log.debug("face detection failed: %s", type(exc).__name__)
            box = None
        if box is not None:
            samples.append(face_sample(img, box, resolution))
        samples.append(full_sample(img, resolution, multiple))
    if skipped:
        log.warning("%d of %d photos could not be read and were skipped", skipped, len(photos))
    if not samples:
        raise TrainingError(f"None of the {len(photos)} photos could be read; there is nothing to train on.")
    return samples, skipped


# --------------------------------------------------------------------------- model state

class _State:
    """Everything the loop needs: UNet with LoRA, optimizer, cached latents and embeddings."""

    def __init__(self, config: TrainConfig, device: torch.device):
        from diffusers import DDPMScheduler, DiffusionPipeline
        from peft import LoraConfig

        self.config, self.device = config, device
        self.autocast = _autocast_dtype(config, device)
        pipe = DiffusionPipeline.from_pretrained(config.base, dtype=torch.float32)
        self.pipeline_cls = type(pipe)
        self.is_sdxl = getattr(pipe, "text_encoder_2", None) is not None
        unet, vae = pipe.unet, pipe.vae
        vae_factor = 2 ** (len(vae.config.block_out_channels) - 1)
        multiple = vae_factor * 2 ** (len(unet.config.block_out_channels) - 1)
        samples, self.skipped = build_samples(config.photos, config.resolution, multiple)
        self.kinds = [s.kind for s in samples]

        with torch.no_grad():
            # Latents: the posterior mean (deterministic), VAE in float32 (SDXL's VAE overflows in fp16).
            vae.to(device)
            sf = vae.config.scaling_factor
            shift = getattr(vae.config, "shift_factor", None) or 0.0
            self.latents = [((vae.encode(s.pixels[None].to(device)).latent_dist.mean - shift) * sf).cpu()
                            for s in samples]
            # Text: one caption for every sample.
            text_dev = device
            for name in ("text_encoder", "text_encoder_2"):
                if getattr(pipe, name, None) is not None:
                    getattr(pipe, name).to(text_dev)
            if self.is_sdxl:
                pe, _, pooled, _ = pipe.encode_prompt(config.caption, device=text_dev, num_images_per_prompt=1,
                                                      do_classifier_free_guidance=False)
                self.prompt_embeds, self.pooled = pe.cpu(), pooled.cpu()
                self.time_ids = [torch.tensor([*s.original_size, *s.crop_top_left,
                                               s.pixels.shape[1], s.pixels.shape[2]], dtype=torch.float32)
                                 for s in samples]
            else:
                pe, _ = pipe.encode_prompt(config.caption, text_dev, 1, False)
                self.prompt_embeds, self.pooled, self.time_ids = pe.cpu(), None, None
        del samples

        self.scheduler = DDPMScheduler.from_config(pipe.scheduler.config)
        self.prediction_type = self.scheduler.config.prediction_type
        self.pipe_config = {"sdxl": self.is_sdxl, "pipeline": self.pipeline_cls.__name__}
        # Free everything but the UNet.
        pipe.vae = pipe.text_encoder = None
        if self.is_sdxl:
            pipe.text_encoder_2 = None
        del pipe, vae
        if device.type == "cuda":
            torch.cuda.empty_cache()
        unet.train()
        unet.requires_grad_(False)
        weight_dtype = self.autocast or torch.float32
        unet.to(device)
        if weight_dtype != torch.float32:
            unet.to(dtype=weight_dtype)
        if device.type == "cuda":
            unet.enable_gradient_checkpointing()

        self.lora_config = LoraConfig(r=config.rank, lora_alpha=config.alpha, init_lora_weights="gaussian",
                                      target_modules=LORA_TARGETS)
        torch.manual_seed(config.seed)  # gaussian LoRA init draws from the global RNG
        unet.add_adapter(self.lora_config)
        for p in unet.parameters():  # trainable LoRA params stay float32 under mixed precision
            if p.requires_grad:
                p.data = p.data.float()
        self.unet = unet
        self.lora_params = {n: p for n, p in unet.named_parameters() if p.requires_grad}
        self.optimizer = torch.optim.AdamW(list(self.lora_params.values()), lr=config.learning_rate,
                                           betas=(0.9, 0.999), weight_decay=1e-4, eps=1e-8)
        self.scaler = torch.amp.GradScaler("cuda") if self.autocast == torch.float16 else None
        self.generator = torch.Generator("cpu").manual_seed(config.seed)
        self.step = 0
        self.losses: list[float] = []
        self.by_kind = {k: [i for i, kk in enumerate(self.kinds) if kk == k] for k in ("face", "full")}

    # ---------------------------------------------------------------- batches

    def sample_batch(self) -> list[int]:
        g = self.generator
        faces, fulls = self.by_kind["face"], self.by_kind["full"]
        want_face = bool(torch.rand((), generator=g) < self.config.face_crop_share)
        pool = faces if (want_face and faces) or not fulls else fulls
        first = pool[int(torch.randint(len(pool), (), generator=g))]
        same = [i for i in range(len(self.latents)) if self.latents[i].shape == self.latents[first].shape]
        rest = [same[int(torch.randint(len(same), (), generator=g))] for _ in range(self.config.batch_size - 1)]
        return [first] + rest

    def make_batch(self, idx: list[int]):
        g = self.generator
        latents = torch.cat([self.latents[i] for i in idx])
        noise = torch.randn(latents.shape, generator=g)
        timesteps = torch.randint(0, self.scheduler.config.num_train_timesteps, (len(idx),), generator=g)
        return latents, noise, timesteps, idx

    # ---------------------------------------------------------------- one step

    def train_step(self, latents, noise, timesteps, idx) -> float:
        dev = self.device
        latents, noise, timesteps = latents.to(dev), noise.to(dev), timesteps.to(dev)
        noisy = self.scheduler.add_noise(latents, noise, timesteps)
        if self.prediction_type == "epsilon":
            target = noise
        elif self.prediction_type == "v_prediction":
            target = self.scheduler.get_velocity(latents, noise, timesteps)
        else:
            raise TrainingError(f"Unsupported prediction type {self.prediction_type!r}.")
        bsz = latents.shape[0]
        kwargs = {}
        if self.is_sdxl:
            kwargs["added_cond_kwargs"] = {
                "text_embeds": self.pooled.expand(bsz, -1).to(dev),
                "time_ids": torch.stack([self.time_ids[i] for i in idx]).to(dev),
            }
        enc = self.prompt_embeds.expand(bsz, -1, -1).to(dev)
        with torch.autocast(dev.type, dtype=self.autocast, enabled=self.autocast is not None):
            pred = self.unet(noisy, timesteps, enc, return_dict=False, **kwargs)[0]
        loss = torch.nn.functional.mse_loss(pred.float(), target.float(), reduction="mean")
        params = list(self.lora_params.values())
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(params, MAX_GRAD_NORM)
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, MAX_GRAD_NORM)
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return float(loss.detach())

    # ---------------------------------------------------------------- checkpoints

    def save_checkpoint(self, out_dir: Path, config_hash: str) -> None:
        """Write out_dir/checkpoint atomically: a tmp folder, then renames."""
        from safetensors.torch import save_file

        final = out_dir / CHECKPOINT
        tmp = out_dir / f".{CHECKPOINT}.tmp-{os.getpid()}"
        old = out_dir / f".{CHECKPOINT}.old"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        save_file({n: p.detach().cpu().contiguous() for n, p in self.lora_params.items()}, str(tmp / "lora.safetensors"))
        torch.save({"optimizer": self.optimizer.state_dict(),
                    "scaler": self.scaler.state_dict() if self.scaler is not None else None}, tmp / "optimizer.pt")
        torch.save({"torch": torch.get_rng_state(), "generator": self.generator.get_state(),
                    "python": random.getstate(), "numpy": np.random.get_state(),
                    "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}, tmp / "rng.pt")
        (tmp / "state.json").write_text(json.dumps({"step": self.step, "config_hash": config_hash,
                                                    "losses": self.losses}))
        shutil.rmtree(old, ignore_errors=True)
        if final.exists():
            final.rename(old)
        tmp.rename(final)
        shutil.rmtree(old, ignore_errors=True)

    def load_checkpoint(self, ckpt: Path) -> None:
        from safetensors.torch import load_file

        weights = load_file(str(ckpt / "lora.safetensors"))
        if set(weights) != set(self.lora_params):
            raise TrainingError("The checkpoint does not match this model's LoRA layers; start a new run.")
        with torch.no_grad():
            for n, p in self.lora_params.items():
                p.copy_(weights[n].to(p.device, p.dtype))
        opt = torch.load(ckpt / "optimizer.pt", map_location="cpu", weights_only=False)
        self.optimizer.load_state_dict(opt["optimizer"])
        if self.scaler is not None and opt.get("scaler"):
            self.scaler.load_state_dict(opt["scaler"])
        rng = torch.load(ckpt / "rng.pt", map_location="cpu", weights_only=False)
        torch.set_rng_state(rng["torch"])
        self.generator.set_state(rng["generator"])
        random.setstate(rng["python"])
        np.random.set_state(rng["numpy"])
        if rng.get("cuda") is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(rng["cuda"])
        state = json.loads((ckpt / "state.json").read_text())
        self.step, self.losses = int(state["step"]), list(state["losses"])

    # ---------------------------------------------------------------- output

    def save_lora(self, out_dir: Path) -> Path:
        from diffusers.utils import convert_state_dict_to_diffusers
        from peft.utils import get_peft_model_state_dict

        layers = convert_state_dict_to_diffusers(get_peft_model_state_dict(self.unet))
        layers = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in layers.items()}
        self.pipeline_cls.save_lora_weights(str(out_dir), unet_lora_layers=layers,
                                            unet_lora_adapter_metadata=self.lora_config.to_dict())
        return out_dir / LORA_FILE


# --------------------------------------------------------------------------- public API

def _read_checkpoint_state(out_dir: Path) -> dict | None:
    ckpt = out_dir / CHECKPOINT
    old = out_dir / f".{CHECKPOINT}.old"
    if not ckpt.exists() and old.exists():  # a crash between the two renames: the old one is whole
        old.rename(ckpt)
    if not (ckpt / "state.json").is_file():
        return None
    return json.loads((ckpt / "state.json").read_text())


def train(config: TrainConfig, resume: bool = True, progress: Callable[[int, int, float], None] | None = None,
          should_stop: Callable[[], bool] | None = None, device: str | torch.device | None = None) -> TrainResult:
    """Train (or continue) one LoRA; returns after the run finishes, a chunk limit, or a cancel.

    ``progress(step, steps, loss)`` is called after every step; ``should_stop()`` is polled after
    every step and, when true, a checkpoint is saved and status "cancelled" returned.
    """
    t0 = time.monotonic()
    out_dir = Path(config.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    device = torch.device(device) if device is not None else pick_device()
    chash = config.config_hash()

    previous = _read_checkpoint_state(out_dir) if resume else None
    if previous is not None and previous.get("config_hash") != chash:
        raise TrainingError("The checkpoint in this folder was made with different settings or photos; "
                            "it cannot be resumed. Start a new run (resume=False) or use another folder.")
    if not resume:
        shutil.rmtree(out_dir / CHECKPOINT, ignore_errors=True)

    try:
        state = _State(config, device)
        if previous is not None:
            state.load_checkpoint(out_dir / CHECKPOINT)
        log.info("training %s LoRA: step %d of %d, %d samples, device %s", state.pipe_config["pipeline"],
                 state.step, config.steps, len(state.latents), device.type)
        status, chunk_start = "paused", state.step
        while state.step < config.steps:
            batch = state.make_batch(state.sample_batch())
            state.losses.append(state.train_step(*batch))
            state.step += 1
            if progress is not None:
                progress(state.step, config.steps, state.losses[-1])
            if state.step >= config.steps:
                break
            if should_stop is not None and should_stop():
                status = "cancelled"
                break
            if config.chunk_steps is not None and state.step - chunk_start >= config.chunk_steps:
                break
            if config.chunk_seconds is not None and time.monotonic() - t0 >= config.chunk_seconds:
                break
    except torch.cuda.OutOfMemoryError as exc:
        raise TrainingError(_oom_message(config, out_dir)) from exc
    except RuntimeError as exc:
        if "out of memory" in str(exc).lower():
            raise TrainingError(_oom_message(config, out_dir)) from exc
        raise

    state.save_checkpoint(out_dir, chash)
    seconds = time.monotonic() - t0
    loss = state.losses[-1] if state.losses else None
    if state.step < config.steps:
        return TrainResult(status, state.step, config.steps, loss, str(out_dir), None, seconds, state.skipped,
                           "Cancelled; the checkpoint was saved." if status == "cancelled"
                           else f"Paused at step {state.step} of {config.steps}; call train() again to continue.")

    lora_path = state.save_lora(out_dir)
    report = {
        "config": config.public_dict(), "config_hash": chash, "pipeline": state.pipe_config["pipeline"],
        "caption": config.caption, "samples": {k: len(v) for k, v in state.by_kind.items()},
        "skipped_photos": state.skipped, "steps": state.step, "final_loss": loss, "loss_history": state.losses,
        "seconds_last_call": round(seconds, 3), "device": device.type,
        "precision": str(state.autocast or torch.float32).replace("torch.", ""), "versions": _versions(),
        "lora_file": LORA_FILE, "lora_sha256": _sha256_file(lora_path),
    }
    tmp = out_dir / "training.json.tmp"
    tmp.write_text(json.dumps(report, indent=2))
    tmp.replace(out_dir / "training.json")
    return TrainResult("finished", state.step, config.steps, loss, str(out_dir), str(lora_path), seconds,
                       state.skipped, "Finished.")


def _oom_message(config: TrainConfig, out_dir: Path) -> str:
    prev = _read_checkpoint_state(out_dir)
    at = f"step {prev['step']}" if prev else "no checkpoint yet"
    return (f"Out of memory while training at {config.resolution} px, batch {config.batch_size}. "
            f"Lower the resolution or batch size, or use a larger GPU. The last checkpoint ({at}) is intact.")


def loss_history(out_dir: str | Path) -> list[float]:
    """The per-step losses of a finished run (training.json), for a loss plot; [] if none."""
    report = Path(out_dir) / "training.json"
    return list(json.loads(report.read_text()).get("loss_history", [])) if report.exists() else []


def fixed_batch_losses(config: TrainConfig, n_steps: int = 20, device: str | torch.device | None = None) -> list[float]:
    """Train ``n_steps`` on ONE fixed batch (fixed noise and timesteps); returns the losses.

    A learning check: with fresh noise each step the loss of 20 steps shows no trend.
    Writes nothing to ``out_dir``.
    """
    device = torch.device(device) if device is not None else pick_device()
    state = _State(config, device)
    batch = state.make_batch(state.sample_batch())
    return [state.train_step(*batch) for _ in range(n_steps)]
