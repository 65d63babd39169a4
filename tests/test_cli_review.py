"""`python -m pipeline review IMAGE... --reference DIR --json` as ARCHITECTURE.md names it."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FACES = REPO.parent / "shared" / "testdata" / "faces"


def run(*args):
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    return subprocess.run([sys.executable, "-m", "pipeline", "review", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)


def test_review_cli_json_layers_and_exit_codes(tmp_path):
    reference = tmp_path / "capture"
    reference.mkdir()
    for name in ("p01_img2.jpg", "p01_img4.jpg", "p01_img5.jpg", "p01_img6.jpg", "p01_img7.jpg"):
        shutil.copy(FACES / name, reference / name)
    done = run(str(FACES / "p01_img1.jpg"), str(FACES / "p04_img30.jpg"), "--reference", str(reference), "--json")
    assert done.returncode == 1, done.stderr  # the other person fails identity
    results = {Path(r["file"]).name: r for r in json.loads(done.stdout)["results"]}
    assert set(results) == {"p01_img1.jpg", "p04_img30.jpg"}
    for r in results.values():
        assert r["verdict"] in ("pass", "warn", "fail")
        for layer in ("identity", "realism", "context"):
            assert r[layer]["verdict"] in ("pass", "warn", "fail") and "reasons" in r[layer]
    assert results["p01_img1.jpg"]["identity"]["verdict"] == "pass"
    assert results["p04_img30.jpg"]["identity"]["verdict"] == "fail"
    assert any(x["code"] == "identity_mismatch" for x in results["p04_img30.jpg"]["identity"]["reasons"])


def test_review_cli_usage_errors(tmp_path):
    assert run(str(FACES / "p01_img1.jpg"), "--reference", str(tmp_path / "none")).returncode == 2
    assert run(str(tmp_path / "missing.jpg"), "--reference", str(FACES)).returncode == 2
