"""The app's own training and generation code on a GPU, at tiny size: does the CUDA path work?

``gpu_bench.py`` times the SDXL architecture with a copy of the training step; this runs the real
:func:`pipeline.train.train` and :func:`pipeline.generate.generate` on the tiny SDXL of
``pipeline/tiny.py`` and real photos, on CUDA when there is one:

- training under each mixed precision the device offers (bf16, and fp16 with its GradScaler on
  CUDA; float32 on CPU), in two chunks: the second call resumes from the first one's checkpoint;
- generation through :class:`pipeline.generate.PipelineCache` on the same device, with and without
  the trained LoRA, and a check that the per-request adapter is gone afterwards.

It prints ONE JSON object (logs go to stderr) and exits 1 when any check fails.

Run:   .venv/bin/python benchmarks/gpu_app_paths.py                      # CUDA if available
       .venv/bin/python benchmarks/gpu_app_paths.py --device cpu --steps 4
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks._common import FACES_DIR, training_photos  # noqa: E402

log = logging.getLogger("gpu_app_paths")


def _precisions(device: torch.device) -> list[str]:
    if device.type != "cuda":
        return ["no"]
    return (["bf16"] if torch.cuda.is_bf16_supported() else []) + ["fp16"]


def check_training(base: Path, photos: list[str], out: Path, precision: str, steps: int,
                   device: torch.device) -> dict:
    from pipeline.train import TrainConfig, train

    config = TrainConfig(base=str(base), photos=photos, out_dir=str(out), resolution=64, steps=steps, rank=4,
                         alpha=8, learning_rate=1e-3, seed=7, face_crop_share=0.5, mixed_precision=precision,
                         chunk_steps=max(1, steps // 2))
    t0 = time.perf_counter()
    first = train(config, resume=False, device=device)
    second = train(config, resume=True, device=device)
    seconds = time.perf_counter() - t0
    report = json.loads((out / "training.json").read_text()) if (out / "training.json").is_file() else {}
    ok = (first.status == "paused" and second.status == "finished" and second.step == steps
          and second.loss is not None and math.isfinite(second.loss) and bool(second.lora_path)
          and Path(second.lora_path).is_file())
    return {"precision": precision, "ok": ok, "first_chunk": {"status": first.status, "step": first.step},
            "second_chunk": {"status": second.status, "step": second.step}, "loss": second.loss,
            "recorded_precision": report.get("precision"),
            "gradient_checkpointing": report.get("gradient_checkpointing"), "skipped_photos": second.skipped_photos, "seconds": round(seconds, 3),
            "lora_dir": str(out)}


def check_generation(base: Path, lora_dir: str, device: torch.device) -> dict:
    from pipeline.generate import GenerationSpec, PipelineCache, adapters_present, generate

    cache = PipelineCache(device=str(device))
    spec = GenerationSpec(prompt="a person head, studio portrait", seed=3, steps=4, width=64, height=64,
                          base_model=str(base))
    t0 = time.perf_counter()
    plain = generate(spec, n=2, cache=cache)
    with_lora = generate(dataclasses.replace(spec, lora=lora_dir), n=2, cache=cache)
    again = generate(spec, n=1, cache=cache)
    seconds = time.perf_counter() - t0
    pipe = cache.entry(str(base)).pipe
    a, b, c = (np.asarray(r.image, dtype=np.float32) for r in (plain[0], with_lora[0], again[0]))
    left = adapters_present(pipe)
    checks = {
        "images_finite_and_varied": bool(all(np.isfinite(x).all() and x.std() > 0 for x in (a, b, c))),
        "lora_changes_the_image": bool(np.abs(a - b).mean() > 0.5),
        "adapter_removed_after_request": not left,
        # On CUDA kernels are not bit-deterministic, so "the LoRA is gone" is judged by closeness.
        "same_seed_after_unload_matches": bool(np.abs(a - c).mean() < 1.0),
    }
    return {"ok": all(checks.values()), "checks": checks, "device": str(pipe.device), "dtype": str(pipe.dtype),
            "mean_abs_diff_lora": round(float(np.abs(a - b).mean()), 3),
            "mean_abs_diff_after_unload": round(float(np.abs(a - c).mean()), 4), "seconds": round(seconds, 3)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--steps", type=int, default=8, help="training steps per precision (two chunks)")
    ap.add_argument("--photos", nargs="*", default=None, help="photos to train on (default: p01 of shared)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    device = torch.device(args.device)
    photos = args.photos or training_photos()
    if not photos:
        print(json.dumps({"benchmark": "gpu_app_paths", "fatal": f"no photos (expected some under {FACES_DIR})"}))
        return 2
    if device.type == "cpu":
        torch.set_num_threads(1)
    from pipeline.tiny import build_tiny_sdxl

    result: dict = {"benchmark": "gpu_app_paths", "device": str(device),
                    "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
                    "torch": torch.__version__, "training": [], "generation": None, "errors": []}
    with tempfile.TemporaryDirectory(prefix="gpu_app_paths_") as tmp:
        base = Path(tmp) / "base"
        build_tiny_sdxl(base, seed=0)
        lora_dir = None
        for precision in _precisions(device):
            try:
                rec = check_training(base, photos, Path(tmp) / f"lora_{precision}", precision, args.steps, device)
                lora_dir = lora_dir or (rec["lora_dir"] if rec["ok"] else None)
            except Exception as exc:  # recorded; the other precision still runs
                log.exception("training (%s) failed", precision)
                rec = {"precision": precision, "ok": False, "error": f"{type(exc).__name__}: {exc}"[:400]}
            rec.pop("lora_dir", None)
            result["training"].append(rec)
        if lora_dir:
            try:
                result["generation"] = check_generation(base, lora_dir, device)
            except Exception as exc:
                log.exception("generation failed")
                result["generation"] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:400]}
        if device.type == "cuda":
            result["peak_memory_gb"] = round(torch.cuda.max_memory_allocated(device) / 1024 ** 3, 3)
    ok = bool(result["training"]) and all(r["ok"] for r in result["training"]) and bool(
        result["generation"] and result["generation"]["ok"])
    result["ok"] = ok
    print(json.dumps(result, indent=2, default=str))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
