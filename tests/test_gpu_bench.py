"""Smoke test of benchmarks/gpu_bench.py: ``--tiny`` runs every code path of the GPU benchmark
(LoRA training, pipeline generation, LoRA save/load, FLOP count, matmul rate) on CPU with the tiny
SDXL of pipeline/tiny.py and prints the same JSON keys as the real run (~20 s on 2 cores)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

TOP_KEYS = {"benchmark", "tiny", "device", "device_type", "versions", "config", "params", "setup", "flops",
            "matmul", "floor", "training", "generation", "lora_load", "generation_with_lora", "targets",
            "summary", "skipped", "errors", "total_seconds"}
TRAIN_KEYS = {"rank", "gradient_checkpointing", "steps_per_s", "seconds_per_step", "peak_memory_gb",
              "steps_timed", "warmup_steps", "utilisation_vs_floor", "lora_params", "error"}


def test_gpu_bench_tiny_runs_and_reports_every_key():
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "gpu_bench.py"), "--tiny"], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads(proc.stdout)  # stdout is the JSON only; logs go to stderr

    assert TOP_KEYS <= set(data), TOP_KEYS - set(data)
    assert data["tiny"] is True and data["device_type"] == "cpu"
    assert data["errors"] == [] and data["skipped"] == []
    assert {"torch", "diffusers", "transformers", "peft"} <= set(data["versions"])
    assert set(data["params"]) == {"unet", "vae", "text_encoder", "text_encoder_2"}

    assert data["flops"]["unet_forward"] > 0
    assert data["flops"]["train_step_3x_forward"] == 3 * data["flops"]["unet_forward"]
    assert data["flops"]["train_step_counted_fwd_bwd"] > data["flops"]["unet_forward"]
    assert data["matmul"]["flops_per_s"] > 0
    assert {"floor_seconds", "max_steps_per_s", "flops_per_step"} <= set(data["floor"])

    runs = {(t["rank"], t["gradient_checkpointing"]): t for t in data["training"]}
    assert set(runs) == {(16, False), (32, False), (16, True), (32, True)}
    for t in runs.values():
        assert TRAIN_KEYS <= set(t), TRAIN_KEYS - set(t)
        assert t["error"] is None and t["steps_per_s"] > 0 and t["steps_timed"] == 3
    assert runs[(32, False)]["lora_params"] == 2 * runs[(16, False)]["lora_params"]

    gen = data["generation"]
    assert gen["images"] == 4 and gen["unet_batch"] == 8 and gen["seconds"] > 0 and not gen["interrupted"]
    assert gen["sequential_seconds"] > 0
    lora = data["lora_load"]
    assert lora["rank"] == 16 and len(lora["load_and_set_s"]) == 3 and lora["load_and_set_median_s"] > 0
    assert data["generation_with_lora"]["seconds"] > 0

    assert set(data["targets"]) == {"train_steps_per_s_rank16", "generate_4_images_s", "peak_train_memory_gb"}
    for tgt in data["targets"].values():
        assert {"target", "value", "pass"} <= set(tgt) and tgt["pass"] is None  # not judged on CPU


def test_gpu_app_paths_runs_the_app_code_on_cpu():
    """benchmarks/gpu_app_paths.py (the app's train() in two chunks, then generate() with and
    without the LoRA) on CPU: the same checks it makes on a GPU must pass here."""
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "gpu_app_paths.py"), "--device", "cpu",
                           "--steps", "2"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads(proc.stdout)
    assert data["ok"] is True and data["device"] == "cpu"
    (run,) = data["training"]
    assert run["precision"] == "no" and run["recorded_precision"] == "float32"
    assert run["first_chunk"] == {"status": "paused", "step": 1}
    assert run["second_chunk"] == {"status": "finished", "step": 2}
    assert all(data["generation"]["checks"].values())
    assert data["generation"]["mean_abs_diff_after_unload"] == 0.0  # CPU: the LoRA leaves no trace


def test_gpu_train_full_runs_the_app_training_on_cpu():
    """benchmarks/gpu_train_full.py --tiny: the app's train() with step timestamps, on CPU."""
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "gpu_train_full.py"), "--tiny", "--steps", "4",
                           "--warmup", "1"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads(proc.stdout)
    assert data["ok"] is True and data["status"] == "finished" and data["steps"] == 4
    assert data["gradient_checkpointing_used"] is False  # never on CPU
    assert data["steps_per_s"] > 0 and data["lora_mb"] > 0
