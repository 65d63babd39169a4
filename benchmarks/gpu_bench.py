"""GPU benchmark of the real SDXL architecture (random weights): LoRA training, generation, LoRA load.

Builds the SDXL base 1.0 architecture from its published config values (../shared/STACK_NOTES.md):
UNet2DConditionModel (~2.57 B parameters), AutoencoderKL, CLIPTextModel (ViT-L/14 text) and
CLIPTextModelWithProjection (OpenCLIP bigG/14 text, projection_dim 1280), with random weights,
directly on the GPU in bf16. Nothing is downloaded; no tokenizer is needed (random token ids and
random cached embeddings of the right shapes).

It measures, and prints as ONE JSON object on stdout (logs go to stderr):

- LoRA training (as pipeline/train.py: peft LoRA on ``to_k/to_q/to_v/to_out.0``, gaussian init,
  base frozen in bf16, LoRA params fp32, AdamW, bf16 autocast, DDPM noise, MSE, grad clip 1.0) at
  1024 px (latents 128x128), batch 1, cached latents and text embeddings: steps/s and peak memory
  (``torch.cuda.max_memory_allocated``) per rank (``--ranks``) and gradient checkpointing setting
  (``--gradient-checkpointing off|on|both``; the targets use "off"); warm-up steps excluded;
- generation of 4 images at 1024x1024, 30 Euler steps, CFG on (UNet batch 4 x 2, one VAE decode of
  4 latents) through a StableDiffusionXLPipeline assembled from the components, prompt embeddings
  passed in; then, time permitting, the same 4 images one at a time (as pipeline/generate.py does)
  and with a rank-16 LoRA active;
- LoRA load: a rank-16 LoRA saved with ``StableDiffusionXLPipeline.save_lora_weights`` then
  ``pipe.load_lora_weights(dir, adapter_name=...)`` + ``set_adapters``, ``delete_adapters`` and
  ``unload_lora_weights`` (the app's per-request path);
- the analytic floor: FLOPs of one UNet forward at 1024 px batch 1 (``FlopCounterMode`` on the meta
  device; a training step counts as 3x forward, and the counted forward+backward with a frozen
  base is reported too), the card's bf16 matmul rate (8192^3), ``floor_seconds = flops / rate``, the
  implied maximum steps/s and the measured utilisation;
- pass/fail against the H100 targets: >= 3 training steps/s at rank 16; 4 images <= 8 s; peak
  training memory <= 24 GB.

A time budget (``--budget-s``, default 420 s from process start) guards the whole run: measurements
that would not fit are skipped and listed; a CUDA OOM (or any error) in one measurement is recorded
in the JSON and the run continues with the next.

Run:   .venv/bin/python benchmarks/gpu_bench.py                  # on a GPU machine, < 8 min
       .venv/bin/python benchmarks/gpu_bench.py --tiny           # CPU smoke test, same code paths
       .venv/bin/python benchmarks/gpu_bench.py --meta-only      # param counts + FLOPs, no timing
Flags: --steps N --warmup N --ranks 16,32 --gradient-checkpointing off|on|both --skip-generation
"""
from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import statistics
import sys
import tempfile
import time
import traceback
from pathlib import Path

T_START = time.perf_counter()

import torch  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

log = logging.getLogger("gpu_bench")

from pipeline.train import LORA_TARGETS  # noqa: E402  the app's LoRA target modules
GB = 1024 ** 3

TARGET_TRAIN_STEPS_PER_S = 3.0  # rank 16, 1024 px, batch 1, on one H100
TARGET_GENERATE_4_S = 8.0  # 4 images, 1024x1024, 30 steps, CFG
TARGET_PEAK_TRAIN_GB = 24.0

# ----------------------------------------------------------------------------------- configs
# SDXL base 1.0 (public config values; see ../shared/STACK_NOTES.md).

SDXL_UNET = dict(
    sample_size=128, in_channels=4, out_channels=4, center_input_sample=False, flip_sin_to_cos=True,
    freq_shift=0, down_block_types=["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
    mid_block_type="UNetMidBlock2DCrossAttn",
    up_block_types=["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"], only_cross_attention=False,
    block_out_channels=[320, 640, 1280], layers_per_block=2, downsample_padding=1, mid_block_scale_factor=1,
    act_fn="silu", norm_num_groups=32, norm_eps=1e-5, cross_attention_dim=2048,
    transformer_layers_per_block=[1, 2, 10], attention_head_dim=[5, 10, 20], use_linear_projection=True,
    addition_embed_type="text_time", addition_time_embed_dim=256, projection_class_embeddings_input_dim=2816,
    upcast_attention=False,
)
SDXL_VAE = dict(
    in_channels=3, out_channels=3, block_out_channels=[128, 256, 512, 512],
    down_block_types=["DownEncoderBlock2D"] * 4, up_block_types=["UpDecoderBlock2D"] * 4,
    layers_per_block=2, act_fn="silu", latent_channels=4, norm_num_groups=32, sample_size=1024,
    scaling_factor=0.13025, force_upcast=True,
)
SDXL_TEXT_1 = dict(  # CLIP ViT-L/14 text tower
    vocab_size=49408, hidden_size=768, intermediate_size=3072, num_attention_heads=12, num_hidden_layers=12,
    max_position_embeddings=77, hidden_act="quick_gelu", layer_norm_eps=1e-5, projection_dim=768,
    bos_token_id=49406, eos_token_id=49407, pad_token_id=1,
)
SDXL_TEXT_2 = dict(  # OpenCLIP bigG/14 text tower
    vocab_size=49408, hidden_size=1280, intermediate_size=5120, num_attention_heads=20, num_hidden_layers=32,
    max_position_embeddings=77, hidden_act="gelu", layer_norm_eps=1e-5, projection_dim=1280,
    bos_token_id=49406, eos_token_id=49407, pad_token_id=0,
)
SDXL_SCHEDULER = dict(
    num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
    prediction_type="epsilon", timestep_spacing="leading", steps_offset=1, interpolation_type="linear",
    use_karras_sigmas=False,
)


# ----------------------------------------------------------------------------------- helpers

class Budget:
    """Wall-clock guard from process start."""

    def __init__(self, seconds: float):
        self.deadline = T_START + seconds
        self.skipped: list[str] = []

    def left(self) -> float:
        return self.deadline - time.perf_counter()

    def allows(self, what: str, need_s: float) -> bool:
        if self.left() >= need_s:
            return True
        self.skipped.append(what)
        log.warning("skipping %s: %.0f s left, ~%.0f s needed", what, self.left(), need_s)
        return False


def elapsed() -> float:
    return time.perf_counter() - T_START


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def n_params(module) -> int:
    return sum(p.numel() for p in module.parameters())


def free_memory(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_gb(device: torch.device) -> float | None:
    if device.type == "cuda":
        return round(torch.cuda.max_memory_allocated(device) / GB, 3)
    return None


def error_record(exc: BaseException) -> str:
    msg = f"{type(exc).__name__}: {exc}"
    return msg[:500]


def guarded(name: str, errors: list, device: torch.device, fn, *args, **kwargs):
    """Run one measurement; on OOM or any error record it and carry on."""
    try:
        return fn(*args, **kwargs)
    except Exception as exc:  # torch.OutOfMemoryError included
        log.error("%s failed: %s", name, error_record(exc))
        log.debug("%s", traceback.format_exc())
        rec = {"error": error_record(exc), "oom": isinstance(exc, torch.OutOfMemoryError)}
        errors.append({"measurement": name, **rec})
    # Outside the except block: the traceback (and the activations its frames hold) is gone now.
    free_memory(device)
    return rec


def r(x, nd=4):
    return None if x is None else round(float(x), nd)


# ----------------------------------------------------------------------------------- building

def build_full_unet(device: torch.device, dtype: torch.dtype):
    from diffusers import UNet2DConditionModel

    with torch.device(device):
        unet = UNet2DConditionModel(**SDXL_UNET)
    return unet.to(dtype=dtype)


def build_full_others(device: torch.device, dtype: torch.dtype):
    from diffusers import AutoencoderKL
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    with torch.device(device):
        vae = AutoencoderKL(**SDXL_VAE)
        te1 = CLIPTextModel(CLIPTextConfig(**SDXL_TEXT_1))
        te2 = CLIPTextModelWithProjection(CLIPTextConfig(**SDXL_TEXT_2))
    return vae.to(dtype=dtype), te1.to(dtype=dtype), te2.to(dtype=dtype)


def build_tiny():
    """The tiny SDXL of pipeline/tiny.py (CPU, float32); its tokenizer files go to a temp dir."""
    from pipeline.tiny import build_tiny_sdxl

    cwd = os.getcwd()
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)
        try:
            pipe = build_tiny_sdxl(out_dir=None, seed=0)
        finally:
            os.chdir(cwd)
    return pipe


def make_scheduler(tiny_pipe=None):
    from diffusers import EulerDiscreteScheduler

    if tiny_pipe is not None:
        return EulerDiscreteScheduler.from_config(tiny_pipe.scheduler.config)
    return EulerDiscreteScheduler(**SDXL_SCHEDULER)


def assemble_pipeline(unet, vae, te1, te2, scheduler, tokenizer=None, tokenizer_2=None):
    """An SDXL pipeline from built components (no tokenizers needed when prompt embeddings are passed)."""
    from diffusers import StableDiffusionXLPipeline

    pipe = StableDiffusionXLPipeline(vae=vae, text_encoder=te1, text_encoder_2=te2, tokenizer=tokenizer,
                                     tokenizer_2=tokenizer_2, unet=unet, scheduler=scheduler,
                                     force_zeros_for_empty_prompt=True, add_watermarker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe


# ----------------------------------------------------------------------------------- FLOPs

def _unet_inputs(config, latent_hw: int, batch: int, device, dtype=torch.float32):
    seq = 77
    pooled_dim = config.projection_class_embeddings_input_dim - 6 * config.addition_time_embed_dim
    sample = torch.randn(batch, config.in_channels, latent_hw, latent_hw, device=device, dtype=dtype)
    t = torch.full((batch,), 500, device=device, dtype=torch.long)
    enc = torch.randn(batch, seq, config.cross_attention_dim, device=device, dtype=dtype)
    added = {"text_embeds": torch.randn(batch, pooled_dim, device=device, dtype=dtype),
             "time_ids": torch.randn(batch, 6, device=device, dtype=dtype)}
    return sample, t, enc, added


def count_unet_flops(unet_config: dict, latent_hw: int, lora_rank: int | None = 16) -> dict:
    """FLOPs of one UNet forward at batch 1 (meta device), and of forward+backward with a frozen base
    and a LoRA (the real training step without gradient checkpointing)."""
    from diffusers import UNet2DConditionModel
    from torch.utils.flop_counter import FlopCounterMode

    out: dict = {"counted_on": "meta", "latent_hw": latent_hw, "batch": 1}
    with torch.device("meta"):
        unet = UNet2DConditionModel.from_config(unet_config)
    out["unet_params"] = n_params(unet)
    sample, t, enc, added = _unet_inputs(unet.config, latent_hw, 1, "meta")
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        unet(sample, t, enc, added_cond_kwargs=added, return_dict=False)
    fwd = int(fc.get_total_flops())
    out["unet_forward"] = fwd
    out["train_step_3x_forward"] = 3 * fwd
    if lora_rank:
        try:
            from peft import LoraConfig

            unet.requires_grad_(False)
            unet.add_adapter(LoraConfig(r=lora_rank, lora_alpha=lora_rank, init_lora_weights="gaussian",
                                        target_modules=LORA_TARGETS))
            with FlopCounterMode(display=False) as fc2:
                pred = unet(sample, t, enc, added_cond_kwargs=added, return_dict=False)[0]
                pred.float().pow(2).mean().backward()
            out["train_step_counted_fwd_bwd"] = int(fc2.get_total_flops())
            out["counted_lora_rank"] = lora_rank
        except Exception as exc:  # the 3x figure stands on its own
            out["train_step_counted_error"] = error_record(exc)
    del unet
    gc.collect()
    return out


def matmul_rate(device: torch.device, dtype: torch.dtype, n: int, seconds: float = 2.0) -> dict:
    """Achieved dense matmul FLOP/s (n x n @ n x n) in ``dtype``."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(3):
        c = a @ b
    sync(device)
    t0 = time.perf_counter()
    c = a @ b
    sync(device)
    one = max(time.perf_counter() - t0, 1e-6)
    iters = max(3, min(200, int(seconds / one)))
    sync(device)
    t0 = time.perf_counter()
    for _ in range(iters):
        c = a @ b
    sync(device)
    dt = time.perf_counter() - t0
    del a, b, c
    free_memory(device)
    flops = 2 * n ** 3 * iters / dt
    return {"n": n, "dtype": str(dtype).replace("torch.", ""), "iters": iters, "seconds": r(dt),
            "flops_per_s": flops, "tflops": r(flops / 1e12, 2)}


# ----------------------------------------------------------------------------------- training

class TrainInputs:
    """Cached latents and text embeddings (random, right shapes), as train.py caches them."""

    def __init__(self, unet, latent_hw: int, px: int, device: torch.device, seed: int = 0):
        g = torch.Generator("cpu").manual_seed(seed)
        cfg = unet.config
        pooled_dim = cfg.projection_class_embeddings_input_dim - 6 * cfg.addition_time_embed_dim
        self.latents = torch.randn(1, cfg.in_channels, latent_hw, latent_hw, generator=g).to(device)
        self.prompt_embeds = torch.randn(1, 77, cfg.cross_attention_dim, generator=g).to(device)
        self.pooled = torch.randn(1, pooled_dim, generator=g).to(device)
        self.time_ids = torch.tensor([[px, px, 0, 0, px, px]], dtype=torch.float32, device=device)


def lora_state_dict(unet, adapter_name: str) -> dict:
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft.utils import get_peft_model_state_dict

    layers = convert_state_dict_to_diffusers(get_peft_model_state_dict(unet, adapter_name=adapter_name))
    return {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in layers.items()}


def measure_training(unet, inputs: TrainInputs, rank: int, checkpointing: bool, steps: int, warmup: int,
                     device: torch.device, autocast_dtype, stop_at: float, save_lora_to: Path | None = None,
                     floor_s: float | None = None) -> dict:
    from diffusers import DDPMScheduler
    from peft import LoraConfig

    name = f"bench_r{rank}"
    noise_sched = DDPMScheduler(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012,
                                beta_schedule="scaled_linear")
    if getattr(unet, "peft_config", None):  # a stray adapter from an interrupted measurement
        unet.unload_lora()
    unet.train()
    unet.requires_grad_(False)
    if checkpointing:
        unet.enable_gradient_checkpointing()
    else:
        unet.disable_gradient_checkpointing()
    lora_config = LoraConfig(r=rank, lora_alpha=rank, init_lora_weights="gaussian", target_modules=LORA_TARGETS)
    torch.manual_seed(0)
    optimizer = None
    try:
        unet.add_adapter(lora_config, adapter_name=name)
        params = [p for p in unet.parameters() if p.requires_grad]
        for p in params:  # LoRA weights train in float32 under bf16 autocast
            p.data = p.data.float()
        n_lora = sum(p.numel() for p in params)
        optimizer = torch.optim.AdamW(params, lr=1e-4, betas=(0.9, 0.999), weight_decay=1e-4, eps=1e-8)
        free_memory(device)
        reset_peak(device)
        latents, enc = inputs.latents, inputs.prompt_embeds
        added = {"text_embeds": inputs.pooled, "time_ids": inputs.time_ids}

        def step() -> torch.Tensor:
            noise = torch.randn_like(latents)
            timesteps = torch.randint(0, 1000, (1,), device=device)
            noisy = noise_sched.add_noise(latents, noise, timesteps)
            with torch.autocast(device.type, dtype=autocast_dtype or torch.bfloat16,
                                enabled=autocast_dtype is not None):
                pred = unet(noisy, timesteps, enc, added_cond_kwargs=added, return_dict=False)[0]
            loss = torch.nn.functional.mse_loss(pred.float(), noise.float(), reduction="mean")
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            return loss.detach()

        sync(device)
        t_w = time.perf_counter()
        for _ in range(warmup):
            step()
        sync(device)
        warmup_s = time.perf_counter() - t_w
        done = 0
        t0 = time.perf_counter()
        loss = None
        for _ in range(steps):
            loss = step()
            done += 1
            if time.perf_counter() > stop_at:
                log.warning("rank %d: time budget hit after %d timed steps", rank, done)
                break
        sync(device)
        dt = time.perf_counter() - t0
        out = {
            "rank": rank, "gradient_checkpointing": checkpointing, "lora_params": n_lora,
            "warmup_steps": warmup, "warmup_s": r(warmup_s), "steps_timed": done, "seconds": r(dt),
            "seconds_per_step": r(dt / done) if done else None,
            "steps_per_s": r(done / dt) if done and dt > 0 else None,
            "peak_memory_gb": peak_gb(device),
            "last_loss": r(loss.item(), 5) if loss is not None else None,
            "utilisation_vs_floor": r(floor_s / (dt / done)) if floor_s and done else None,
            "error": None,
        }
        if save_lora_to is not None:
            layers = lora_state_dict(unet, name)
            from diffusers import StableDiffusionXLPipeline

            StableDiffusionXLPipeline.save_lora_weights(str(save_lora_to), unet_lora_layers=layers,
                                                        unet_lora_adapter_metadata=lora_config.to_dict())
        return out
    finally:
        del optimizer
        for p in unet.parameters():
            p.grad = None
        if getattr(unet, "peft_config", None):
            unet.unload_lora()
        unet.disable_gradient_checkpointing()
        unet.eval()
        free_memory(device)


# ----------------------------------------------------------------------------------- generation

def encode_random_prompt(te1, te2, device: torch.device, seed: int = 0) -> dict:
    """SDXL's prompt embeddings from random token ids: penultimate hidden states of both encoders
    concatenated, pooled = text_embeds of encoder 2; negatives are zeros (empty prompt)."""
    g = torch.Generator("cpu").manual_seed(seed)
    vocab = min(te1.config.vocab_size, te2.config.vocab_size)
    ids = torch.randint(0, vocab - 2, (1, 77), generator=g)
    ids[0, 0], ids[0, -1] = vocab - 2, vocab - 1  # bos ... eos (CLIP pools at the eos/argmax)
    ids = ids.to(device)
    with torch.inference_mode():
        h1 = te1(ids, output_hidden_states=True).hidden_states[-2]
        o2 = te2(ids, output_hidden_states=True)
        h2, pooled = o2.hidden_states[-2], o2.text_embeds
        pe = torch.cat([h1, h2], dim=-1)
    return {"prompt_embeds": pe, "negative_prompt_embeds": torch.zeros_like(pe),
            "pooled_prompt_embeds": pooled, "negative_pooled_prompt_embeds": torch.zeros_like(pooled)}


def run_pipe(pipe, embeds: dict, n_images: int, steps: int, px: int, device: torch.device, stop_at: float,
             seed: int = 0, guidance: float = 5.0) -> dict:
    """One pipeline call producing ``n_images`` (batch n x 2 through the UNet with CFG), timed."""
    state = {"steps": 0, "interrupted": False}

    def on_step_end(p, i, t, kw):
        state["steps"] = i + 1
        if time.perf_counter() > stop_at:
            state["interrupted"] = True
            p._interrupt = True
        return kw

    gen = torch.Generator(device.type).manual_seed(seed)
    sync(device)
    t0 = time.perf_counter()
    with torch.inference_mode():
        images = pipe(**embeds, num_images_per_prompt=n_images, num_inference_steps=steps,
                      guidance_scale=guidance, height=px, width=px, generator=gen, output_type="pil",
                      callback_on_step_end=on_step_end).images
    sync(device)
    dt = time.perf_counter() - t0
    return {"seconds": dt, "images": len(images), "steps_run": state["steps"], "interrupted": state["interrupted"]}


def measure_generation(pipe, embeds, n_images, steps, px, device, budget: Budget, est_gen_s: float,
                       sequential: bool) -> dict:
    out: dict = {"images": n_images, "steps": steps, "height": px, "width": px, "cfg": True,
                 "guidance_scale": 5.0, "unet_batch": 2 * n_images, "scheduler": type(pipe.scheduler).__name__}
    # Warm-up: same shapes, 2 steps (kernels, cuDNN autotune, VAE decode at full batch).
    w = run_pipe(pipe, embeds, n_images, 2, px, device, budget.deadline)
    out["warmup_s"] = r(w["seconds"])
    reset_peak(device)
    res = run_pipe(pipe, embeds, n_images, steps, px, device, budget.deadline)
    out["seconds"] = r(res["seconds"])
    out["interrupted"] = res["interrupted"]
    out["steps_run"] = res["steps_run"]
    out["images_per_s"] = r(n_images / res["seconds"])
    out["peak_memory_gb"] = peak_gb(device)
    out["sequential_seconds"] = None
    if sequential and budget.allows("generation_sequential", max(est_gen_s, res["seconds"]) * 1.6 + 10):
        total, interrupted = 0.0, False
        for i in range(n_images):
            s = run_pipe(pipe, embeds, 1, steps, px, device, budget.deadline, seed=i)
            total += s["seconds"]
            interrupted |= s["interrupted"]
        out["sequential_seconds"] = r(total)
        out["sequential_interrupted"] = interrupted
    return out


def measure_lora_load(pipe, lora_dir: Path, repeats: int, device: torch.device) -> dict:
    """The app's per-request LoRA path: load + set_adapters, then delete_adapters + unload."""
    file = lora_dir / "pytorch_lora_weights.safetensors"
    out: dict = {"rank": 16, "file_mb": r(file.stat().st_size / 1e6, 2), "load_and_set_s": [],
                 "delete_s": [], "unload_s": []}
    for i in range(repeats):
        name = f"bench_load_{i}"
        sync(device)
        t0 = time.perf_counter()
        pipe.load_lora_weights(str(lora_dir), adapter_name=name)
        pipe.set_adapters([name], adapter_weights=[1.0])
        sync(device)
        t1 = time.perf_counter()
        pipe.delete_adapters([name])
        sync(device)
        t2 = time.perf_counter()
        pipe.unload_lora_weights()
        sync(device)
        t3 = time.perf_counter()
        out["load_and_set_s"].append(r(t1 - t0))
        out["delete_s"].append(r(t2 - t1))
        out["unload_s"].append(r(t3 - t2))
    out["load_and_set_median_s"] = r(statistics.median(out["load_and_set_s"]))
    out["load_and_set_first_s"] = out["load_and_set_s"][0]
    out["delete_median_s"] = r(statistics.median(out["delete_s"]))
    out["unload_median_s"] = r(statistics.median(out["unload_s"]))
    return out


def measure_generation_with_lora(pipe, lora_dir: Path, embeds, n_images, steps, px, device, budget) -> dict:
    name = "bench_gen_lora"
    pipe.load_lora_weights(str(lora_dir), adapter_name=name)
    try:
        pipe.set_adapters([name], adapter_weights=[1.0])
        res = run_pipe(pipe, embeds, n_images, steps, px, device, budget.deadline)
        return {"seconds": r(res["seconds"]), "interrupted": res["interrupted"], "images": n_images}
    finally:
        pipe.delete_adapters([name])
        pipe.unload_lora_weights()


# ----------------------------------------------------------------------------------- main

def target(value, limit, kind: str, tiny: bool, unit: str) -> dict:
    ok = None
    if value is not None and not tiny:
        ok = bool(value >= limit) if kind == ">=" else bool(value <= limit)
    return {"target": f"{kind} {limit} {unit}", "value": value, "pass": ok,
            "note": "tiny run on CPU: not applicable" if tiny else "H100 target"}


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tiny", action="store_true", help="CPU smoke test with pipeline/tiny.py's SDXL at 64 px")
    ap.add_argument("--meta-only", action="store_true",
                    help="full-size build on the meta device: parameter counts and FLOPs only")
    ap.add_argument("--steps", type=int, default=None, help="timed training steps per config (20; tiny 3)")
    ap.add_argument("--warmup", type=int, default=None, help="untimed warm-up steps (3; tiny 1)")
    ap.add_argument("--ranks", default="16,32", help="LoRA ranks, comma separated (16 is always used first)")
    ap.add_argument("--gradient-checkpointing", choices=("off", "on", "both"), default="both",
                    help="'both' measures 'off' for every rank first, then 'on' time permitting")
    ap.add_argument("--skip-generation", action="store_true")
    ap.add_argument("--gen-steps", type=int, default=None, help="inference steps (30; tiny 2)")
    ap.add_argument("--images", type=int, default=4)
    ap.add_argument("--lora-load-repeats", type=int, default=3)
    ap.add_argument("--budget-s", type=float, default=420.0, help="wall-clock budget from process start")
    ap.add_argument("--matmul-n", type=int, default=None, help="matmul size for the rate (8192; tiny 256)")
    ap.add_argument("-v", "--verbose", action="store_true")
    return ap.parse_args(argv)


def versions() -> dict:
    import diffusers
    import peft
    import transformers

    return {"torch": torch.__version__, "cuda": torch.version.cuda, "diffusers": diffusers.__version__,
            "transformers": transformers.__version__, "peft": peft.__version__, "python": sys.version.split()[0]}


def meta_only() -> dict:
    from diffusers import AutoencoderKL
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    with torch.device("meta"):
        vae = AutoencoderKL(**SDXL_VAE)
        te1 = CLIPTextModel(CLIPTextConfig(**SDXL_TEXT_1))
        te2 = CLIPTextModelWithProjection(CLIPTextConfig(**SDXL_TEXT_2))
    flops = count_unet_flops(SDXL_UNET, 128)
    return {"benchmark": "gpu_bench", "mode": "meta-only", "versions": versions(),
            "params": {"unet": flops.pop("unet_params"), "vae": n_params(vae), "text_encoder": n_params(te1),
                       "text_encoder_2": n_params(te2)},
            "flops": flops, "total_seconds": r(elapsed(), 2)}


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        return run(args)
    except Exception as exc:  # a failure outside any single measurement (e.g. building the UNet)
        log.exception("benchmark failed")
        print(json.dumps({"benchmark": "gpu_bench", "tiny": bool(args.tiny), "fatal": error_record(exc),
                          "total_seconds": r(elapsed(), 2)}, indent=2))
        return 1


def run(args) -> int:
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if args.meta_only:
        print(json.dumps(meta_only(), indent=2))
        return 0

    tiny = args.tiny
    if not tiny and not torch.cuda.is_available():
        log.error("no CUDA device: run with --tiny (CPU smoke test) or --meta-only")
        return 2
    device = torch.device("cpu") if tiny else torch.device("cuda")
    if tiny:  # tiny tensors: one thread avoids OpenMP stalls when CI runs other jobs on the same cores
        torch.set_num_threads(1)
    dtype = torch.float32 if tiny else torch.bfloat16
    autocast_dtype = None if tiny else torch.bfloat16
    px = 64 if tiny else 1024
    steps = args.steps if args.steps is not None else (3 if tiny else 20)
    warmup = args.warmup if args.warmup is not None else (1 if tiny else 3)
    gen_steps = args.gen_steps if args.gen_steps is not None else (2 if tiny else 30)
    matmul_n = args.matmul_n or (256 if tiny else 8192)
    ranks = [int(x) for x in args.ranks.split(",") if x.strip()]
    if 16 in ranks:  # rank 16 first: it holds the target and provides the LoRA file
        ranks = [16] + [x for x in ranks if x != 16]
    ckpt_modes = {"off": [False], "on": [True], "both": [False, True]}[args.gradient_checkpointing]
    budget = Budget(args.budget_s)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True

    errors: list = []
    result: dict = {
        "benchmark": "gpu_bench", "tiny": tiny,
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "device_type": device.type, "versions": versions(),
        "config": {"resolution": px, "batch": 1, "ranks": ranks, "train_steps": steps, "warmup_steps": warmup,
                   "gradient_checkpointing": args.gradient_checkpointing, "gen_steps": gen_steps,
                   "images": args.images, "weights_dtype": str(dtype).replace("torch.", ""),
                   "autocast": str(autocast_dtype).replace("torch.", "") if autocast_dtype else None,
                   "lora_targets": LORA_TARGETS, "budget_s": args.budget_s,
                   "note": "targets use gradient checkpointing off; pipeline/train/loop.py's 'auto' leaves it off "
                           "when free GPU memory holds the activations (ACTIVATION_GB_1024), so the gc-off rows are "
                           "the app's configuration on a large GPU and the gc-on rows on a small one"},
        "params": {}, "setup": {}, "flops": {}, "matmul": {}, "floor": {}, "training": [],
        "generation": None, "lora_load": None, "generation_with_lora": None,
    }

    # ---- set-up: the UNet first (training measures with only the UNet resident, as train.py)
    tiny_pipe = None
    t0 = time.perf_counter()
    if tiny:
        tiny_pipe = build_tiny()
        unet = tiny_pipe.unet
        vae_scale = 2 ** (len(tiny_pipe.vae.config.block_out_channels) - 1)
    else:
        unet = build_full_unet(device, dtype)
        vae_scale = 2 ** (len(SDXL_VAE["block_out_channels"]) - 1)
    sync(device)
    result["setup"]["unet_build_s"] = r(time.perf_counter() - t0)
    result["params"]["unet"] = n_params(unet)
    latent_hw = px // vae_scale
    log.info("UNet built: %.3f B params in %.1f s", result["params"]["unet"] / 1e9, result["setup"]["unet_build_s"])

    # ---- analytic floor
    flops = guarded("flops", errors, device, count_unet_flops, dict(unet.config), latent_hw)
    result["flops"] = flops
    flops.pop("unet_params", None)
    mm = guarded("matmul", errors, device, matmul_rate, device, dtype, matmul_n, 0.3 if tiny else 2.0)
    result["matmul"] = mm
    log.info("floor: forward %.3g FLOPs, matmul %s TFLOP/s (t=%.0f s)", flops.get("unet_forward") or 0,
             mm.get("tflops"), elapsed())
    floor_s = None
    if "unet_forward" in flops and "flops_per_s" in mm:
        floor_s = flops["train_step_3x_forward"] / mm["flops_per_s"]
        result["floor"] = {
            "flops_per_step": flops["train_step_3x_forward"], "basis": "3 x UNet forward (batch 1)",
            "floor_seconds": r(floor_s, 5), "max_steps_per_s": r(1 / floor_s, 3),
            "matmul_flops_per_s": mm["flops_per_s"],
        }
        if "train_step_counted_fwd_bwd" in flops:
            fs2 = flops["train_step_counted_fwd_bwd"] / mm["flops_per_s"]
            result["floor"]["floor_seconds_counted_fwd_bwd"] = r(fs2, 5)
            result["floor"]["max_steps_per_s_counted_fwd_bwd"] = r(1 / fs2, 3)

    # ---- training
    # Reserve time for the generation part (set-up of VAE/text encoders, warm-up, timed runs).
    reserve = 0.0 if args.skip_generation else (20.0 if tiny else 150.0)
    lora_dir_ctx = tempfile.TemporaryDirectory(prefix="gpu_bench_lora_")
    lora_dir = Path(lora_dir_ctx.name)
    lora_saved = False
    inputs = TrainInputs(unet, latent_hw, px, device)
    est_step = None
    for ckpt in ckpt_modes:
        for rank in ranks:
            label = f"train_r{rank}_gc{'on' if ckpt else 'off'}"
            need = 10.0 if est_step is None else est_step * (steps + warmup) * (1.4 if ckpt else 1.0) + 5
            if not budget.allows(label, need + reserve):
                result["training"].append({"rank": rank, "gradient_checkpointing": ckpt, "skipped": "time budget",
                                           "steps_per_s": None, "peak_memory_gb": None, "error": None})
                continue
            stop_at = budget.deadline - reserve
            save_to = lora_dir if (rank == 16 and not lora_saved) else None
            rec = guarded(label, errors, device, measure_training, unet, inputs, rank, ckpt, steps, warmup,
                          device, autocast_dtype, stop_at, save_to, floor_s)
            if "error" in rec and rec.get("rank") is None:
                rec = {"rank": rank, "gradient_checkpointing": ckpt, "steps_per_s": None, "peak_memory_gb": None,
                       **rec}
            elif save_to is not None:
                lora_saved = True
            if rec.get("seconds_per_step"):
                est_step = max(est_step or 0.0, rec["seconds_per_step"])
            result["training"].append(rec)
            log.info("%s: %s", label, {k: rec.get(k) for k in ("steps_per_s", "peak_memory_gb", "error")})
    del inputs
    unet.requires_grad_(False)
    free_memory(device)

    # ---- generation + LoRA load
    if not args.skip_generation:
        pipe = None
        t0 = time.perf_counter()
        try:
            if tiny:
                vae, te1, te2 = tiny_pipe.vae, tiny_pipe.text_encoder, tiny_pipe.text_encoder_2
            else:
                vae, te1, te2 = build_full_others(device, dtype)
            sync(device)
            result["setup"]["vae_text_build_s"] = r(time.perf_counter() - t0)
            result["params"].update(vae=n_params(vae), text_encoder=n_params(te1), text_encoder_2=n_params(te2))
            for m in (vae, te1, te2, unet):
                m.eval()
            pipe = assemble_pipeline(unet, vae, te1, te2, make_scheduler(tiny_pipe))
            sync(device)
            t1 = time.perf_counter()
            embeds = encode_random_prompt(te1, te2, device)
            sync(device)
            result["setup"]["text_encode_s"] = r(time.perf_counter() - t1)
        except Exception as exc:
            errors.append({"measurement": "generation_setup", "error": error_record(exc),
                           "oom": isinstance(exc, torch.OutOfMemoryError)})
            log.error("generation set-up failed: %s", error_record(exc))
            free_memory(device)
        if pipe is not None:
            if budget.allows("generation", 40.0 if not tiny else 5.0):
                result["generation"] = guarded("generation", errors, device, measure_generation, pipe, embeds,
                                               args.images, gen_steps, px, device, budget, 10.0, True)
            log.info("generation: %s (t=%.0f s)", {k: (result["generation"] or {}).get(k)
                                                   for k in ("seconds", "sequential_seconds", "error")}, elapsed())
            gen_s = (result["generation"] or {}).get("seconds") or 10.0
            if lora_saved and budget.allows("lora_load", 15.0 if not tiny else 2.0):
                result["lora_load"] = guarded("lora_load", errors, device, measure_lora_load, pipe, lora_dir,
                                              args.lora_load_repeats, device)
                log.info("lora load: %s (t=%.0f s)", (result["lora_load"] or {}).get("load_and_set_median_s"),
                         elapsed())
            if lora_saved and budget.allows("generation_with_lora", gen_s * 1.5 + 10):
                result["generation_with_lora"] = guarded(
                    "generation_with_lora", errors, device, measure_generation_with_lora, pipe, lora_dir, embeds,
                    args.images, gen_steps, px, device, budget)
            elif not lora_saved:
                budget.skipped.append("lora_load (no rank-16 LoRA was saved: training skipped or failed)")
    lora_dir_ctx.cleanup()

    # ---- summary and targets
    def train_rec(rank, ckpt):
        for rec in result["training"]:
            if rec.get("rank") == rank and rec.get("gradient_checkpointing") == ckpt:
                return rec
        return {}

    # The targets use gradient checkpointing off; if that run failed (e.g. OOM), the "on" run stands in.
    r16 = next((x for x in (train_rec(16, False), train_rec(16, True)) if x.get("steps_per_s")), train_rec(16, False))
    gen = result["generation"] or {}
    result["targets"] = {
        "train_steps_per_s_rank16": target(r16.get("steps_per_s"), TARGET_TRAIN_STEPS_PER_S, ">=", tiny, "steps/s"),
        "generate_4_images_s": target(gen.get("seconds") if not gen.get("interrupted") else None,
                                      TARGET_GENERATE_4_S, "<=", tiny, "s"),
        "peak_train_memory_gb": target(r16.get("peak_memory_gb"), TARGET_PEAK_TRAIN_GB, "<=", tiny, "GB"),
    }
    result["targets"]["train_steps_per_s_rank16"]["gradient_checkpointing"] = r16.get("gradient_checkpointing")
    result["targets"]["peak_train_memory_gb"]["gradient_checkpointing"] = r16.get("gradient_checkpointing")
    result["summary"] = {
        "train_steps_per_s": {f"r{x.get('rank')}_gc{'on' if x.get('gradient_checkpointing') else 'off'}":
                              x.get("steps_per_s") for x in result["training"]},
        "peak_train_memory_gb": {f"r{x.get('rank')}_gc{'on' if x.get('gradient_checkpointing') else 'off'}":
                                 x.get("peak_memory_gb") for x in result["training"]},
        "floor_max_steps_per_s": result["floor"].get("max_steps_per_s"),
        "utilisation_rank16": r16.get("utilisation_vs_floor"),
        "generate_4_images_s": gen.get("seconds"),
        "lora_load_and_set_s": (result["lora_load"] or {}).get("load_and_set_median_s"),
    }
    result["skipped"] = budget.skipped
    result["errors"] = errors
    result["total_seconds"] = r(elapsed(), 2)
    print(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
