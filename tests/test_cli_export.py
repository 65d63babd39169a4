"""`python -m pipeline export` as ARCHITECTURE.md names it: framed, signed files plus manifest.json."""
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

from PIL import Image

from pipeline.provenance import ensure_signing_identity, verify_file

REPO = Path(__file__).resolve().parents[1]
FACES = REPO.parent / "shared" / "testdata" / "faces"


def run(*args, data_dir):
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    return subprocess.run([sys.executable, "-m", "pipeline", "export", *args, "--data-dir", str(data_dir)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def test_export_cli_frames_signs_and_lists_every_file(tmp_path):
    out, data = tmp_path / "out", tmp_path / "data"
    done = run(str(FACES / "p04_img30.jpg"), "--spec", "linkedin", "--spec", "web-bio", "--out", str(out),
               "--first", "Ada", "--last", "Lovelace", data_dir=data)
    assert done.returncode == 0, done.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    sizes = sorted((f["spec"], f["width"], f["height"]) for f in manifest["files"])
    assert sizes == [("linkedin", 1024, 1024), ("web-bio", 1200, 1500)]
    zip_path = Path(json.loads(done.stdout)["zip"])
    with zipfile.ZipFile(zip_path) as zf:
        assert sorted(zf.namelist()) == sorted([f["name"] for f in manifest["files"]] + ["manifest.json"])
    root = ensure_signing_identity(data).root_pem
    for f in manifest["files"]:
        path = out / "files" / f["name"]
        assert f["name"].startswith("Lovelace_Ada_") and Image.open(path).size == (f["width"], f["height"])
        assert verify_file(path, trust_anchor_pem=root)["trusted"]


def test_export_cli_usage_errors(tmp_path):
    bad_spec = run(str(FACES / "p04_img30.jpg"), "--spec", "poster", "--out", str(tmp_path), data_dir=tmp_path)
    assert bad_spec.returncode == 2 and "linkedin" in bad_spec.stderr
    missing = run(str(tmp_path / "nope.jpg"), "--spec", "linkedin", "--out", str(tmp_path), data_dir=tmp_path)
    assert missing.returncode == 2 and "no such file" in missing.stderr


def test_export_cli_applies_a_style_guides_overrides(tmp_path):
    guide = (REPO / "presets" / "styleguides" / "acme.yaml").read_text().replace(
        "  name_template:", "  export_overrides:\n    avatar: {sizes: [[300, 300]], format: PNG}\n  name_template:")
    (tmp_path / "acme.yaml").write_text(guide)
    done = run(str(FACES / "p04_img30.jpg"), "--spec", "avatar", "--out", str(tmp_path / "out"),
               "--style-guide", str(tmp_path / "acme.yaml"), data_dir=tmp_path / "data")
    assert done.returncode == 0, done.stderr
    (f,) = json.loads((tmp_path / "out" / "manifest.json").read_text())["files"]
    assert (f["width"], f["height"], f["format"]) == (300, 300, "PNG")
    bad = run(str(FACES / "p04_img30.jpg"), "--spec", "avatar", "--out", str(tmp_path / "o2"), "--preset", "nope",
              data_dir=tmp_path / "data")
    assert bad.returncode == 2 and "unknown preset" in bad.stderr
