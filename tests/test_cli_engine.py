"""`python -m pipeline train` then `generate` (with --set and --vary) end to end on a tiny SDXL."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from tests.tiny_fixtures import tiny_sdxl_dir

REPO = Path(__file__).resolve().parents[1]
FACES = REPO.parent / "shared" / "testdata" / "faces"
ENV = dict(os.environ, HF_HUB_OFFLINE="1")
SMALL = ["--steps", "2", "--width", "64", "--height", "64"]


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipeline", *args], cwd=REPO, env=ENV, capture_output=True,
                          text=True, timeout=300)


@pytest.fixture(scope="module")
def lora_dir(tmp_path_factory) -> tuple[Path, Path]:
    base = tiny_sdxl_dir(tmp_path_factory)
    photos = tmp_path_factory.mktemp("photos")
    for name in ("p02_img8.jpg", "p02_img9.jpg"):
        shutil.copy(FACES / name, photos / name)
    out = tmp_path_factory.mktemp("lora")
    done = run("train", "--base", str(base), "--photos", str(photos), "--out", str(out), "--steps", "3",
               "--rank", "4", "--resolution", "64")
    assert done.returncode == 0, done.stderr
    return base, out


def test_generate_with_lora_and_vary_one_field(lora_dir, tmp_path):
    base, lora = lora_dir
    out = tmp_path / "row"
    done = run("generate", "--base", str(base), "--lora", str(lora), "--preset", "corporate",
               "--set", "expression=warm_smile", "--vary", "background=light_grey_seamless,dark_charcoal",
               "--seed", "7", "--n", "1", "--out", str(out), *SMALL)
    assert done.returncode == 0, done.stderr
    results = json.loads((out / "results.json").read_text())["results"]
    assert [r["varied"] for r in results] == [{"field": "background", "value": "light_grey_seamless"},
                                              {"field": "background", "value": "dark_charcoal"}]
    specs = [r["spec"] for r in results]
    assert {s["seed"] for s in specs} == {7}
    assert all(s["fields"]["expression"] == "warm_smile" for s in specs)
    assert specs[0]["fields"]["background"] != specs[1]["fields"]["background"]
    assert specs[0]["prompt"] != specs[1]["prompt"]
    for r in results:
        assert Image.open(r["image_path"]).size == (64, 64)


def test_generate_usage_errors(lora_dir, tmp_path):
    base, _ = lora_dir
    bad_field = run("generate", "--base", str(base), "--preset", "corporate", "--set", "hat=red", "--seed", "1",
                    "--out", str(tmp_path), *SMALL)
    assert bad_field.returncode == 2 and "hat" in bad_field.stderr
    bad_preset = run("generate", "--base", str(base), "--preset", "nope", "--seed", "1", "--out", str(tmp_path), *SMALL)
    assert bad_preset.returncode == 2 and "linkedin" in bad_preset.stderr
    offline = run("generate", "--base", "org/not-here", "--preset", "linkedin", "--seed", "1", "--out", str(tmp_path), *SMALL)
    assert offline.returncode == 2 and "HEADSHOT_BASE_MODEL" in offline.stderr
