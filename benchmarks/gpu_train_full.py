"""The app's own :func:`pipeline.train.train` on a full-size SDXL (random weights) on a GPU.

``gpu_bench.py`` times a copy of the training step; this saves the full SDXL architecture (the
configs in ``gpu_bench.py``, bf16, random weights, the tiny pipeline's tokenizers: token ids stay in
range) in diffusers layout and runs the real ``train()`` on it at 1024 px with real photos, as the
app does: pipeline load, latent and text caching, the ``gradient_checkpointing="auto"`` choice, the
loop, the checkpoint and the LoRA save. Steps/s is read from the progress callback's timestamps
(after ``--warmup`` steps), so it excludes loading and caching, which are reported on their own.

Prints ONE JSON object; logs go to stderr.

Run:   python benchmarks/gpu_train_full.py                  # CUDA, ~2 min on an H200
       python benchmarks/gpu_train_full.py --tiny --steps 4 # CPU smoke test of the same code
"""
from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks._common import training_photos  # noqa: E402

log = logging.getLogger("gpu_train_full")


def save_full_sdxl(out: Path, device: torch.device) -> float:
    """Write the full SDXL architecture (random weights, bf16) to ``out``; returns seconds."""
    from benchmarks.gpu_bench import assemble_pipeline, build_full_others, build_full_unet, make_scheduler
    from pipeline.tiny import build_tiny_sdxl

    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        tiny = build_tiny_sdxl(Path(tmp) / "tiny")  # only its tokenizers are used
        unet = build_full_unet(device, torch.bfloat16)
        vae, te1, te2 = build_full_others(device, torch.bfloat16)
        pipe = assemble_pipeline(unet, vae, te1, te2, make_scheduler(), tiny.tokenizer, tiny.tokenizer_2)
        pipe.save_pretrained(str(out))
    del pipe, unet, vae, te1, te2
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return time.perf_counter() - t0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tiny", action="store_true", help="the tiny SDXL at 64 px on CPU (smoke test)")
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--warmup", type=int, default=5, help="steps not counted in steps/s")
    ap.add_argument("--rank", type=int, default=16)
    ap.add_argument("--gradient-checkpointing", choices=("auto", "on", "off"), default="auto")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    from pipeline.tiny import build_tiny_sdxl
    from pipeline.train import TrainConfig, train

    device = torch.device("cpu" if args.tiny or not torch.cuda.is_available() else "cuda")
    if not args.tiny and device.type != "cuda":
        log.error("no CUDA device: use --tiny for the CPU smoke test")
        return 2
    if device.type == "cpu":
        torch.set_num_threads(1)
    photos = training_photos()
    result: dict = {"benchmark": "gpu_train_full", "tiny": args.tiny, "device": str(device),
                    "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
                    "torch": torch.__version__, "photos": len(photos)}
    with tempfile.TemporaryDirectory(prefix="gpu_train_full_") as tmp:
        base = Path(tmp) / "base"
        if args.tiny:
            build_tiny_sdxl(base)
        else:
            result["save_base_s"] = round(save_full_sdxl(base, device), 2)
        resolution = 64 if args.tiny else 1024
        config = TrainConfig(base=str(base), photos=photos, out_dir=str(Path(tmp) / "lora"), resolution=resolution,
                             steps=args.steps, rank=args.rank, alpha=args.rank, learning_rate=1e-4, seed=0,
                             mixed_precision="no" if device.type == "cpu" else "bf16",
                             gradient_checkpointing=args.gradient_checkpointing)
        stamps: list[float] = []
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        t0 = time.perf_counter()
        res = train(config, resume=False, device=device,
                    progress=lambda step, steps, loss: stamps.append(time.perf_counter()))
        total = time.perf_counter() - t0
        report = json.loads((Path(config.out_dir) / "training.json").read_text())
        warm = min(args.warmup, max(0, len(stamps) - 2))
        timed = len(stamps) - 1 - warm
        loop_s = stamps[-1] - stamps[warm] if timed > 0 else None
        result.update({
            "status": res.status, "steps": res.step, "final_loss": res.loss,
            "resolution": resolution, "rank": args.rank, "precision": report.get("precision"),
            "gradient_checkpointing_setting": args.gradient_checkpointing,
            "gradient_checkpointing_used": report.get("gradient_checkpointing"),
            "steps_per_s": round(timed / loop_s, 3) if loop_s else None,
            "seconds_per_step": round(loop_s / timed, 4) if loop_s else None,
            "before_first_step_s": round(stamps[0] - t0, 2) if stamps else None,
            "after_last_step_s": round(t0 + total - stamps[-1], 2) if stamps else None,
            "total_s": round(total, 2),
            "peak_memory_gb": round(torch.cuda.max_memory_allocated(device) / 1024 ** 3, 3)
            if device.type == "cuda" else None,
            "lora_mb": round(Path(res.lora_path).stat().st_size / 1e6, 2) if res.lora_path else None,
        })
    result["ok"] = result["status"] == "finished" and result["steps_per_s"] is not None
    print(json.dumps(result, indent=2))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
