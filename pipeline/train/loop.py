"""The training loop: model state (UNet + LoRA, optimizer, cached latents and embeddings), saving
and loading its checkpoints (every RNG state included; the files' integrity is :mod:`.checkpoint`),
:func:`train` in resumable chunks, and loss helpers."""
from __future__ import annotations

import dataclasses
import gc
import hashlib
import io
import json
import logging
import os
import random
import shutil
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..durable import fsync_dir, fsync_file, write_atomic, write_synced
from .checkpoint import (CHECKPOINT, MANIFEST, OLD_CHECKPOINT, TMP_PREFIX, read_checkpoint_state,
                         remove_stale_temp, torch_bytes, verify_checkpoint)
from .config import TrainConfig, TrainingError, TrainResult, _sha256_file
from .data import build_samples

log = logging.getLogger(__name__)

LORA_TARGETS = ["to_k", "to_q", "to_v", "to_out.0"]
LORA_FILE = "pytorch_lora_weights.safetensors"
MAX_GRAD_NORM = 1.0


def _versions() -> dict:
    import diffusers
    import peft
    import transformers

    return {"torch": torch.__version__, "diffusers": diffusers.__version__, "peft": peft.__version__,
            "transformers": transformers.__version__}


def pick_device() -> torch.device:
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


# Activation memory of one SDXL training step at 1024 px, batch 1, bf16, beyond the UNet's own
# weights: 12.5 GB peak minus 5.1 GB of bf16 weights on an H200 (benchmarks/gpu_bench.py; LoRA and
# optimizer state included), with a margin. Float32 activations take twice that. Checkpointing cuts
# the peak to 5.9 GB but makes a step 2.5x slower (0.80 vs 1.96 steps/s), so "auto" turns it on
# only when the free memory would not hold the activations, and train() retries a chunk with it on
# if "auto" guessed wrong and the GPU ran out of memory.
ACTIVATION_GB_1024 = 10.0


def use_gradient_checkpointing(config: TrainConfig, device: torch.device, free_bytes: int | None = None) -> bool:
    """Whether this run recomputes activations: never on CPU; on CUDA per ``config`` ("auto":
    when free memory, read after the UNet is on the device, is under the activations' need)."""
    if device.type != "cuda" or config.gradient_checkpointing == "off":
        return False
    if config.gradient_checkpointing == "on":
        return True
    if free_bytes is None:
        torch.cuda.empty_cache()  # cached blocks (e.g. freed by a dtype cast) would count as used
        free_bytes, _ = torch.cuda.mem_get_info(device)
    need_gb = ACTIVATION_GB_1024 * config.batch_size * (config.resolution / 1024) ** 2
    if config.mixed_precision == "no":
        need_gb *= 2  # float32 activations
    return free_bytes / 1024 ** 3 < need_gb


def _autocast_dtype(config: TrainConfig, device: torch.device):
    if device.type != "cuda" or config.mixed_precision == "no":
        return None
    return torch.float16 if config.mixed_precision == "fp16" else torch.bfloat16


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
        # One call: each weight is cast on its way, so the GPU never holds a float32 copy of the UNet.
        unet.to(device=device, dtype=weight_dtype)
        self.gradient_checkpointing = use_gradient_checkpointing(config, device)
        if self.gradient_checkpointing:
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
        self.start_steps: list[int] = []  # the step each train() call started at (resumes > 0)
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
        """Write out_dir/checkpoint atomically: files into a temp folder beside it (fsynced), then a
        sha256 manifest written last, then renames. A reader sees the old or the new checkpoint,
        never a mix; a folder without a matching manifest is refused (see :func:`verify_checkpoint`)."""
        from safetensors.torch import save

        final = out_dir / CHECKPOINT
        tmp = out_dir / f"{TMP_PREFIX}{os.getpid()}"
        old = out_dir / OLD_CHECKPOINT
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        hashes: dict[str, str] = {}

        def put(name: str, data: bytes) -> None:
            write_synced(tmp / name, data)
            hashes[name] = hashlib.sha256(data).hexdigest()

        put("lora.safetensors", save({n: p.detach().cpu().contiguous() for n, p in self.lora_params.items()}))
        put("optimizer.pt", torch_bytes({"optimizer": self.optimizer.state_dict(),
                                          "scaler": self.scaler.state_dict() if self.scaler is not None else None}))
        put("rng.pt", torch_bytes({"torch": torch.get_rng_state(), "generator": self.generator.get_state(),
                                    "python": random.getstate(), "numpy": np.random.get_state(),
                                    "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}))
        put("state.json", json.dumps({"step": self.step, "config_hash": config_hash, "losses": self.losses,
                                      "start_steps": self.start_steps}).encode())
        # The manifest goes last: its presence says every file before it is complete.
        write_synced(tmp / MANIFEST, json.dumps({"sha256": hashes}, sort_keys=True).encode())
        fsync_dir(tmp)
        shutil.rmtree(old, ignore_errors=True)
        if final.exists():
            final.rename(old)
        tmp.rename(final)
        fsync_dir(out_dir)
        shutil.rmtree(old, ignore_errors=True)

    def load_checkpoint(self, ckpt: Path) -> None:
        """Load a checkpoint from bytes that were verified against its manifest (never re-read
        from disk after the check, so a file changed in between cannot slip in)."""
        from safetensors.torch import load

        files = verify_checkpoint(ckpt)
        weights = load(files["lora.safetensors"])
        if set(weights) != set(self.lora_params):
            raise TrainingError("The checkpoint does not match this model's LoRA layers; start a new run.")
        with torch.no_grad():
            for n, p in self.lora_params.items():
                p.copy_(weights[n].to(p.device, p.dtype))
        opt = torch.load(io.BytesIO(files["optimizer.pt"]), map_location="cpu", weights_only=False)
        self.optimizer.load_state_dict(opt["optimizer"])
        if self.scaler is not None and opt.get("scaler"):
            self.scaler.load_state_dict(opt["scaler"])
        rng = torch.load(io.BytesIO(files["rng.pt"]), map_location="cpu", weights_only=False)
        torch.set_rng_state(rng["torch"])
        self.generator.set_state(rng["generator"])
        random.setstate(rng["python"])
        np.random.set_state(rng["numpy"])
        if rng.get("cuda") is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(rng["cuda"])
        state = json.loads(files["state.json"])
        self.step, self.losses = int(state["step"]), list(state["losses"])
        self.start_steps = [int(s) for s in state.get("start_steps", [])]

    # ---------------------------------------------------------------- output

    def save_lora(self, out_dir: Path) -> Path:
        from diffusers.utils import convert_state_dict_to_diffusers
        from peft.utils import get_peft_model_state_dict

        layers = convert_state_dict_to_diffusers(get_peft_model_state_dict(self.unet))
        layers = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in layers.items()}
        # diffusers writes straight to its final name; write into a temp folder beside it and
        # rename, so a kill mid-write never leaves a truncated LoRA under the real name.
        tmp = Path(tempfile.mkdtemp(prefix=TMP_PREFIX, dir=out_dir))
        try:
            self.pipeline_cls.save_lora_weights(str(tmp), unet_lora_layers=layers,
                                                unet_lora_adapter_metadata=self.lora_config.to_dict())
            fsync_file(tmp / LORA_FILE)
            os.replace(tmp / LORA_FILE, out_dir / LORA_FILE)
            fsync_dir(out_dir)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return out_dir / LORA_FILE


# --------------------------------------------------------------------------- public API

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
    remove_stale_temp(out_dir)  # one run per out_dir at a time: anything temp here is from a dead one

    previous = read_checkpoint_state(out_dir) if resume else None
    if previous is not None and previous.get("config_hash") != chash:
        raise TrainingError("The checkpoint in this folder was made with different settings or photos; "
                            "it cannot be resumed. Start a new run (resume=False) or use another folder.")
    if not resume:
        shutil.rmtree(out_dir / CHECKPOINT, ignore_errors=True)

    state, checkpointing = None, None
    try:
        state = _State(config, device)
        checkpointing = state.gradient_checkpointing
        if previous is not None:
            state.load_checkpoint(out_dir / CHECKPOINT)
            log.info("resuming from the checkpoint at step %d", state.step)
        state.start_steps.append(state.step)
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
            if config.checkpoint_steps is not None and state.step % config.checkpoint_steps == 0:
                state.save_checkpoint(out_dir, chash)
            if should_stop is not None and should_stop():
                status = "cancelled"
                break
            if config.chunk_steps is not None and state.step - chunk_start >= config.chunk_steps:
                break
            if config.chunk_seconds is not None and time.monotonic() - t0 >= config.chunk_seconds:
                break
    except RuntimeError as exc:  # torch.cuda.OutOfMemoryError is one
        if not (isinstance(exc, torch.cuda.OutOfMemoryError) or "out of memory" in str(exc).lower()):
            raise
        with_it = dataclasses.replace(config, gradient_checkpointing="on")
        # Retry only when "auto" left checkpointing off and turning it on would change something.
        if not (config.gradient_checkpointing == "auto" and checkpointing is False
                and use_gradient_checkpointing(with_it, device, free_bytes=0)):
            raise TrainingError(_oom_message(config, out_dir)) from exc
        log.warning("out of memory without gradient checkpointing; retrying from the last checkpoint with it on")
        retry = True
    else:
        retry = False
    if retry:  # outside the except block, so the failed attempt's tensors can be freed first
        state = None
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()
        left = None if config.chunk_seconds is None else max(1.0, config.chunk_seconds - (time.monotonic() - t0))
        again = dataclasses.replace(with_it, chunk_seconds=left)
        return train(again, resume=True, progress=progress, should_stop=should_stop, device=device)

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
        "precision": str(state.autocast or torch.float32).replace("torch.", ""),
        "gradient_checkpointing": state.gradient_checkpointing, "versions": _versions(),
        "lora_file": LORA_FILE, "lora_sha256": _sha256_file(lora_path),
        # The step each call started at: a value > 0 is a resume from a checkpoint.
        "start_steps": state.start_steps,
    }
    write_atomic(out_dir / "training.json", json.dumps(report, indent=2).encode())
    return TrainResult("finished", state.step, config.steps, loss, str(out_dir), str(lora_path), seconds,
                       state.skipped, "Finished.")


def _oom_message(config: TrainConfig, out_dir: Path) -> str:
    try:
        prev = read_checkpoint_state(out_dir)
    except TrainingError:
        prev = None
    at = f"step {prev['step']}" if prev else "no checkpoint yet"
    return (f"Out of memory while training at {config.resolution} px, batch {config.batch_size}. "
            f"Lower the resolution or batch size, turn gradient checkpointing on, or use a larger GPU. "
            f"The last checkpoint ({at}) is intact.")


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
