"""`python -m pipeline capture ... --json` as a subprocess: JSON contract and exit codes (ARCHITECTURE.md)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import KNOWN_CODES, REPO, photos_of

VERDICTS = {"accept", "warn", "reject"}

pytestmark = pytest.mark.timeout(300)  # each test starts a fresh interpreter that loads the models


def run_cli(*args: str | Path, timeout: float = 240) -> subprocess.CompletedProcess:
    env = dict(os.environ, HF_HUB_OFFLINE="1", GLOG_minloglevel="2")
    return subprocess.run([sys.executable, "-m", "pipeline", "capture", *map(str, args)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)


def parse_report(proc: subprocess.CompletedProcess) -> dict:
    try:
        return json.loads(proc.stdout)
    except json.JSONDecodeError as exc:
        raise AssertionError(f"stdout is not JSON ({exc}); rc={proc.returncode}\nstdout={proc.stdout[:2000]}\n"
                             f"stderr={proc.stderr[-2000:]}") from exc


def assert_report_shape(report: dict, n_inputs: int) -> None:
    assert set(report) >= {"photos", "set"}
    photos = report["photos"]
    assert isinstance(photos, list) and len(photos) == n_inputs
    for p in photos:
        assert isinstance(p["file"], str) and p["file"]
        assert p["verdict"] in VERDICTS
        assert isinstance(p["reasons"], list)
        for r in p["reasons"]:
            assert r["code"] in KNOWN_CODES, r
            assert isinstance(r["message"], str) and r["message"].strip()
            assert r["severity"] in ("warn", "reject")
            for key in ("value", "threshold"):
                if key in r:
                    assert isinstance(r[key], (int, float))
        # The verdict is the worst reason.
        worst = "reject" if any(r["severity"] == "reject" for r in p["reasons"]) else \
            "warn" if p["reasons"] else "accept"
        assert p["verdict"] == worst, p
    s = report["set"]
    assert s["verdict"] in VERDICTS
    assert isinstance(s["reasons"], list) and isinstance(s["selected"], list)
    for r in s["reasons"]:
        assert r["code"] in KNOWN_CODES and r["message"].strip()
    files = [p["file"] for p in photos]
    assert set(s["selected"]) <= set(files)
    selected = {p["file"] for p in photos if p.get("selected")}
    assert selected == set(s["selected"])
    for p in photos:
        if p["file"] in s["selected"]:
            assert p["verdict"] != "reject"


@pytest.fixture(scope="module")
def mixed_dir(tmp_path_factory, faces_dir) -> Path:
    """p02's photos, a photo of two people and a text file dressed as a JPEG."""
    d = tmp_path_factory.mktemp("cli_mixed")
    for name in photos_of("p02") + ["couple.jpg"]:
        shutil.copyfile(faces_dir / name, d / name)
    (d / "notes.jpg").write_text("not a photo")
    return d


def test_accepted_set_exits_0_and_directory_is_expanded(varied_set_dir, tmp_path):
    d = tmp_path / "set"
    shutil.copytree(varied_set_dir, d)
    (d / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")  # hidden files are not photos
    (d / "subfolder").mkdir()  # nor are folders inside the folder
    proc = run_cli(d, "--json")
    report = parse_report(proc)
    expected = sorted(p.name for p in varied_set_dir.iterdir())
    assert_report_shape(report, len(expected))
    assert [p["file"] for p in report["photos"]] == expected  # name order
    assert all(p["verdict"] == "accept" for p in report["photos"]), report["photos"]
    assert report["set"]["verdict"] == "accept" and report["set"]["reasons"] == []
    assert report["set"]["selected"]
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_rejected_photos_exit_1_with_codes_in_input_order(mixed_dir, faces_dir):
    inputs = [mixed_dir / "notes.jpg", mixed_dir / "couple.jpg"] + [mixed_dir / n for n in photos_of("p02")]
    proc = run_cli(*inputs, "--json")
    report = parse_report(proc)
    assert_report_shape(report, len(inputs))
    assert [p["file"] for p in report["photos"]] == [p.name for p in inputs]
    by_file = {p["file"]: p for p in report["photos"]}
    assert by_file["notes.jpg"]["verdict"] == "reject"
    assert [r["code"] for r in by_file["notes.jpg"]["reasons"]] == ["unreadable"]
    assert by_file["couple.jpg"]["verdict"] == "reject"
    assert "multiple_faces" in {r["code"] for r in by_file["couple.jpg"]["reasons"]}
    for name in photos_of("p02"):
        assert by_file[name]["verdict"] != "reject", by_file[name]
    assert set(report["set"]["selected"]) == set(photos_of("p02"))
    assert proc.returncode == 1, proc.stderr[-2000:]


def test_human_readable_output_has_the_same_exit_code(mixed_dir):
    proc = run_cli(mixed_dir)
    assert proc.returncode == 1, proc.stderr[-2000:]
    out = proc.stdout
    assert "notes.jpg" in out and "[unreadable]" in out and "[multiple_faces]" in out
    assert "Set:" in out


def test_missing_path_exits_2(tmp_path, faces_dir):
    proc = run_cli(faces_dir / "p02_img8.jpg", tmp_path / "no-such-photo.jpg", "--json")
    assert proc.returncode == 2
    assert "no-such-photo.jpg" in proc.stderr
    assert proc.stdout.strip() == ""


def test_only_unreadable_inputs_exit_2(tmp_path):
    fake = tmp_path / "holiday.jpg"
    fake.write_text("this is a text file, not a photo")
    proc = run_cli(fake, "--json")
    assert proc.returncode == 2, proc.stderr[-2000:]
    report = parse_report(proc)
    assert_report_shape(report, 1)
    assert [r["code"] for r in report["photos"][0]["reasons"]] == ["unreadable"]
    assert report["set"]["selected"] == []


def test_empty_directory_and_no_arguments_exit_2(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert run_cli(empty, "--json").returncode == 2
    assert run_cli().returncode == 2  # argparse usage error
