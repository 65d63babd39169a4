"""Faults: a training process killed mid-chunk, damaged checkpoints and LoRAs, GPU out-of-memory
and ZeroGPU quota errors, and a full disk during export. Tiny real pipelines, real photos, CPU."""
from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest
import torch

from pipeline.errors import explain_gpu_error
from pipeline.train import TrainConfig, TrainingError, train
from pipeline.train.checkpoint import CHECKPOINT, TMP_PREFIX, verify_checkpoint
from tests.tiny_fixtures import tiny_sdxl_dir

REPO = Path(__file__).resolve().parents[1]
FACES = REPO.parent / "shared" / "testdata" / "faces"
PHOTOS = [str(FACES / n) for n in ("p01_img1.jpg", "p01_img10.jpg")]
STEPS = 8

# Runs in a child process: train slowly (a sleep per step) with a checkpoint every 2 steps, so the
# parent can SIGKILL it mid-chunk. One thread, like the parent, so the resume is bit-exact.
CHILD = """
import json, sys, time, torch
torch.set_num_threads(1)
from pipeline.train import TrainConfig, train
train(TrainConfig(**json.loads(sys.argv[1])), resume=False, progress=lambda *a: time.sleep(0.4))
"""


def _config(base, out_dir, **kw) -> TrainConfig:
    values = dict(base=str(base), photos=list(PHOTOS), out_dir=str(out_dir), resolution=64, steps=STEPS, rank=4,
                  alpha=8, learning_rate=1e-3, seed=3, mixed_precision="no", checkpoint_steps=2)
    values.update(kw)
    return TrainConfig(**values)


def _flip_byte(path: Path, offset: int | None = None) -> None:
    data = bytearray(path.read_bytes())
    i = len(data) - 10 if offset is None else offset  # inside the tensor data, past the header
    data[i] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.fixture(scope="module")
def sdxl_dir(tmp_path_factory) -> Path:
    return tiny_sdxl_dir(tmp_path_factory)


@pytest.fixture(scope="module")
def killed_then_resumed(sdxl_dir, tmp_path_factory):
    """A real training process SIGKILLed after its first checkpoint, then resumed here."""
    out = tmp_path_factory.mktemp("killed")
    config = _config(sdxl_dir, out)
    payload = json.dumps({k: v for k, v in vars(config).items()})
    child = subprocess.Popen([sys.executable, "-c", CHILD, payload], cwd=REPO, env=dict(os.environ, HF_HUB_OFFLINE="1"),
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    state = out / CHECKPOINT / "state.json"
    try:
        while not state.exists():
            assert child.poll() is None, child.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "no checkpoint within 120 s"
            time.sleep(0.05)
        time.sleep(0.3)  # land somewhere inside the next steps, not at a checkpoint boundary
        still_training = child.poll() is None
        child.send_signal(signal.SIGKILL)
        child.wait(30)
    finally:
        if child.poll() is None:
            child.kill()
        child.stderr.close()
    # Right after the kill: what exists under a final name is whole.
    after_kill = sorted(p.relative_to(out).as_posix() for p in out.rglob("*"))
    killed_step = json.loads(verify_checkpoint(out / CHECKPOINT)["state.json"])["step"]
    torch.set_num_threads(1)
    result = train(config, resume=True)
    return SimpleNamespace(out=out, config=config, still_training=still_training, after_kill=after_kill,
                           killed_step=killed_step, result=result)


def test_kill_mid_chunk_resumes_from_checkpoint_and_finishes(killed_then_resumed, sdxl_dir, tmp_path):
    from diffusers import StableDiffusionXLPipeline
    from safetensors.torch import load_file

    k = killed_then_resumed
    assert k.still_training, "the child must be killed while still training"
    assert 2 <= k.killed_step < STEPS
    # Nothing final but the verified checkpoint: no LoRA, no training.json, no half-written file.
    finals = [p for p in k.after_kill if not p.split("/")[0].startswith(TMP_PREFIX)]
    assert set(finals) <= {CHECKPOINT, *(f"{CHECKPOINT}/{n}" for n in
                                        ("lora.safetensors", "optimizer.pt", "rng.pt", "state.json", "manifest.json"))}
    assert (k.result.status, k.result.step) == ("finished", STEPS)
    report = json.loads((k.out / "training.json").read_text())
    assert report["start_steps"][0] == 0 and report["start_steps"][-1] == k.killed_step > 0
    assert len(report["loss_history"]) == STEPS
    assert not list(k.out.glob(f"{TMP_PREFIX}*")), "temp folders of the killed run are cleaned up"
    # Bit-exact with an uninterrupted run: the RNG, optimizer and step all came back.
    torch.set_num_threads(1)
    train(_config(sdxl_dir, tmp_path, checkpoint_steps=None), resume=False)
    a = load_file(str(k.out / "pytorch_lora_weights.safetensors"))
    b = load_file(str(tmp_path / "pytorch_lora_weights.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[n], b[n]) for n in a)
    pipe = StableDiffusionXLPipeline.from_pretrained(str(sdxl_dir))
    pipe.load_lora_weights(str(k.out), adapter_name="subject")
    assert "subject" in pipe.get_list_adapters().get("unet", [])


def test_corrupted_checkpoint_is_refused_not_loaded(killed_then_resumed, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(killed_then_resumed.out, out)
    config = _config(killed_then_resumed.config.base, out)
    verify_checkpoint(out / CHECKPOINT)  # intact copy verifies
    _flip_byte(out / CHECKPOINT / "lora.safetensors")
    before = (out / "pytorch_lora_weights.safetensors").read_bytes()
    with pytest.raises(TrainingError, match=r"checkpoint is damaged: lora\.safetensors does not match the sha256"):
        train(config, resume=True)
    assert (out / "pytorch_lora_weights.safetensors").read_bytes() == before  # nothing trained or saved
    (out / CHECKPOINT / "manifest.json").unlink()
    with pytest.raises(TrainingError, match="no readable integrity manifest"):
        train(config, resume=True)


def test_damaged_lora_is_refused_by_generate(killed_then_resumed, sdxl_dir, tmp_path):
    from pipeline.generate import GenerationSpec, ModelUnavailable, PipelineCache, adapters_present, generate

    lora = tmp_path / "lora"
    lora.mkdir()
    for name in ("pytorch_lora_weights.safetensors", "training.json"):
        shutil.copy(killed_then_resumed.out / name, lora / name)
    cache = PipelineCache(device="cpu")
    spec = GenerationSpec(prompt="a photo of sks person", steps=1, width=64, height=64, guidance_scale=1.0,
                          base_model=str(sdxl_dir), lora=str(lora))
    assert len(generate(spec, cache=cache)) == 1  # intact: loads
    _flip_byte(lora / "pytorch_lora_weights.safetensors")
    with pytest.raises(ModelUnavailable, match="do not match the sha256 recorded in training.json"):
        generate(spec, cache=cache)
    assert adapters_present(cache.get(str(sdxl_dir))) == []


# ------------------------------------------------------------------ GPU errors


def _spaces_error(title: str, message: str) -> Exception:
    from spaces.zero.gradio import error  # the factory ZeroGPU raises its errors with

    return error(title, message)


@pytest.mark.parametrize("make, action, kind, words", [
    (lambda: torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"), "generate",
     "out_of_memory", ["ran out of memory while generating", "fewer images", "smaller image size"]),
    (lambda: torch.cuda.OutOfMemoryError("CUDA out of memory."), "train", "out_of_memory",
     ["while training", "lower training resolution", "resumes from its last checkpoint"]),
    (lambda: RuntimeError("MPS backend out of memory (MPS allocated: 9 GB)"), "generate", "out_of_memory",
     ["ran out of memory"]),
    (lambda: _spaces_error("ZeroGPU worker error", "OutOfMemoryError"), "generate", "out_of_memory",
     ["ran out of memory"]),
    (lambda: _spaces_error("ZeroGPU quota exceeded", "You have exceeded your free ZeroGPU quota (90s requested vs. "
                           "30s left). Try again in 0:12:05. "), "generate", "gpu_quota",
     ["GPU time", "used up", "Try again in about 12 min 5 s", "fewer images"]),
    (lambda: _spaces_error("ZeroGPU quota exceeded", "Space app has reached its GPU limit. Try re-running outside "
                           "of examples if it happened after clicking one"), "generate", "gpu_quota",
     ["used up", "Wait a while"]),
    (lambda: _spaces_error("ZeroGPU worker error", "GPU task aborted"), "generate", "gpu_aborted",
     ["stopped before it finished", "fewer images"]),
    (lambda: _spaces_error("ZeroGPU illegal duration", "The requested GPU duration (900s) is larger than the "
                           "maximum allowed"), "train", "gpu_duration", ["more GPU time", "fewer photos"]),
    (lambda: _spaces_error("ZeroGPU quota exceeded", "No GPU was available after 60s. Try re-running outside of "
                           "examples if it happened after clicking one"), "generate", "gpu_quota", ["Wait"]),
])
def test_gpu_errors_map_to_plain_words(make, action, kind, words):
    explained = explain_gpu_error(make(), action)
    assert explained is not None and explained.kind == kind
    assert all(w in explained.message for w in words), explained.message


@pytest.mark.parametrize("exc", [ValueError("seed must be an integer"), RuntimeError("shape mismatch"),
                                 KeyError("x"), OSError(errno.ENOENT, "missing")])
def test_other_errors_are_not_explained_away(exc):
    assert explain_gpu_error(exc) is None


@pytest.fixture
def engine_session(tmp_path, monkeypatch):
    import ui.engine as engine
    from pipeline.session import Session

    session = Session("faults-session", root=tmp_path)
    session.results_dir.mkdir(parents=True)
    return engine, session


def test_oom_in_generation_is_clear_and_the_next_call_works(engine_session, killed_then_resumed, sdxl_dir,
                                                           monkeypatch):
    import gradio as gr

    from pipeline.generate import GenerationSpec, adapters_present, default_cache

    engine, session = engine_session
    spec = GenerationSpec(prompt="a photo of sks person", steps=1, width=64, height=64, guidance_scale=1.0,
                          base_model=str(sdxl_dir), lora=str(killed_then_resumed.out))
    pipe = default_cache().get(str(sdxl_dir))
    real_forward, calls = pipe.unet.forward, {"n": 0}

    def forward_that_fails_once(*args, **kwargs):  # the real UNet, except the first call OOMs
        calls["n"] += 1
        if calls["n"] == 1:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
        return real_forward(*args, **kwargs)

    monkeypatch.setattr(pipe.unet, "forward", forward_that_fails_once)
    with pytest.raises(gr.Error) as err:
        engine._run(spec, 2, session, {})
    assert "ran out of memory while generating" in err.value.message and "fewer images" in err.value.message
    assert adapters_present(pipe) == []  # the failed request's LoRA did not stay behind
    items, ids = engine._run(spec, 2, session, {})
    assert len(items) == len(ids) == 2 and all(Path(path).is_file() for path, _ in items)


def test_zerogpu_quota_is_clear_and_the_next_call_works(engine_session, sdxl_dir, monkeypatch):
    import gradio as gr

    from pipeline.generate import GenerationSpec

    engine, session = engine_session
    spec = GenerationSpec(prompt="a photo of sks person", steps=1, width=64, height=64, guidance_scale=1.0,
                          base_model=str(sdxl_dir))
    real, calls = engine.gpu_generate, {"n": 0}

    def scheduled(*args):  # ZeroGPU refuses the first call at scheduling time, as spaces does
        calls["n"] += 1
        if calls["n"] == 1:
            raise _spaces_error("ZeroGPU quota exceeded", "You have exceeded your free ZeroGPU quota (60s requested "
                                "vs. 10s left). Try again in 0:00:45. ")
        return real(*args)

    monkeypatch.setattr(engine, "gpu_generate", scheduled)
    with pytest.raises(gr.Error) as err:
        engine._run(spec, 1, session, {})
    assert "Try again in about 45 s" in err.value.message and err.value.title == "GPU quota used up"
    items, _ = engine._run(spec, 1, session, {})
    assert len(items) == 1


# ------------------------------------------------------------------ disk full during export


def _png(path: Path, colour) -> str:
    from PIL import Image

    Image.new("RGB", (96, 120), colour).save(path)
    return str(path)


def test_disk_full_during_export_leaves_nothing_behind(tmp_path, monkeypatch):
    import pipeline.export as export

    images = {f"r{i}": _png(tmp_path / f"in{i}.png", (40 * i, 90, 160)) for i in range(3)}
    out = tmp_path / "bundle"
    real_save, saves = export.render.save, {"n": 0}

    def save_then_fill_disk(im, path, spec, xmp):  # the 3rd file: half written, then ENOSPC
        saves["n"] += 1
        real_save(im, path, spec, xmp)
        if saves["n"] == 3:
            with open(path, "r+b") as fh:
                fh.truncate(100)
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(export.render, "save", save_then_fill_disk)
    with pytest.raises(export.ExportError, match="disk is full") as err:
        export.export_bundle(images, ["linkedin"], out, data_dir=tmp_path / "data")
    assert err.value.errno == errno.ENOSPC and saves["n"] == 3
    assert [p for p in out.rglob("*") if p.is_file()] == []  # no images, manifest, zip or temp files

    # Full disk while the zip is written: a partial zip is removed, the images too.
    monkeypatch.setattr(export.render, "save", real_save)
    real_write = export.bundle.zipfile.ZipFile.write

    def write_then_fill_disk(self, filename, arcname=None, *a, **kw):
        real_write(self, filename, arcname, *a, **kw)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(export.bundle.zipfile.ZipFile, "write", write_then_fill_disk)
    with pytest.raises(export.ExportError, match="disk is full"):
        export.export_bundle(images, ["linkedin"], out, data_dir=tmp_path / "data")
    assert [p for p in out.rglob("*") if p.is_file()] == []
    monkeypatch.setattr(export.bundle.zipfile.ZipFile, "write", real_write)
    assert export.export_bundle(images, ["linkedin"], out, data_dir=tmp_path / "data").is_file()


def test_export_handler_turns_disk_full_into_gr_error(tmp_path, monkeypatch):
    import gradio as gr

    import pipeline.export as export
    import ui.export as ui_export

    monkeypatch.setenv("HEADSHOT_DATA_DIR", str(tmp_path / "data"))

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(export.render, "save", full)
    upload = _png(tmp_path / "upload.png", (200, 120, 90))
    with pytest.raises(gr.Error) as err:
        ui_export.export_files(["linkedin"], "Ada", "Lovelace", False, [upload], SimpleNamespace(session_hash="s1"),
                               progress=None)
    assert "disk is full" in err.value.message and err.value.title == "Export failed"
