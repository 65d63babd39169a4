"""DreamBooth-LoRA training of the UNet, resumable in chunks.

Follows diffusers' ``train_dreambooth_lora_sdxl.py``: a peft LoRA (``to_k/to_q/to_v/to_out.0``,
gaussian init) on the UNet only, VAE latents and text embeddings cached once before the loop,
DDPM noise/timesteps, epsilon or v-prediction MSE, AdamW on the LoRA parameters, grad-norm clip 1.0,
constant learning rate. SDXL and SD 1.x pipelines both work.

Chunks: each :func:`train` call runs at most ``chunk_steps`` steps or ``chunk_seconds`` seconds and
then writes ``out_dir/checkpoint`` atomically; the next call resumes exactly (on CPU with a fixed
thread count, bit-identical to an uninterrupted run). All loop randomness comes from one
checkpointed CPU ``torch.Generator``.

Privacy: logs and ``training.json`` never hold photo paths, pixels or prompts beyond the
trigger/class words; photos are identified by sha256 only.

Modules: :mod:`.config` (settings, defaults, result, error, time estimate), :mod:`.data` (samples,
buckets, face crops), :mod:`.checkpoint` (checkpoint files and their
integrity), :mod:`.loop` (model state, saving and loading checkpoints, :func:`train`, loss helpers).
"""
from .checkpoint import CHECKPOINT
from .config import (DEFAULTS_BY_SET_SIZE, TrainConfig, TrainingError, TrainResult, config_for,
                     estimate_seconds)
from .data import BUCKETS_1024, FACE_EXPAND, Sample, buckets, build_samples, face_crop_box, face_sample, full_sample
from .loop import (LORA_FILE, LORA_TARGETS, MAX_GRAD_NORM, fixed_batch_losses, loss_history,
                   pick_device, train)

__all__ = [
    "BUCKETS_1024", "CHECKPOINT", "DEFAULTS_BY_SET_SIZE", "FACE_EXPAND", "LORA_FILE", "LORA_TARGETS",
    "MAX_GRAD_NORM", "Sample", "TrainConfig", "TrainResult", "TrainingError", "buckets", "build_samples",
    "config_for", "estimate_seconds", "face_crop_box", "face_sample", "fixed_batch_losses", "full_sample",
    "loss_history", "pick_device", "train",
]
