"""Hostile and broken input: property-based and corpus fuzzing of intake and the capture CLI.

Every input must end as an accepted photo or an :class:`IntakeError` with a stable code; nothing
else may escape, and decoding a crafted file must not blow up memory.
"""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from pipeline.intake import IntakeError, open_photo
from pipeline.session import safe_filename

from .conftest import upright
from .test_intake import png_with_declared_size

ROOT = Path(__file__).resolve().parents[1]
CODES = {"unreadable", "too_large"}
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture],
                derandomize=True)  # the same examples on every run: CI must not flake


def _encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


@pytest.fixture(scope="module")
def seeds(faces_dir) -> dict[str, bytes]:
    """Valid files of every accepted format, small so the fuzzer runs fast."""
    img = upright(faces_dir / "p04_img30.jpg", 256)
    return {"jpeg": _encode(img, "JPEG", quality=85), "png": _encode(img, "PNG"),
            "webp": _encode(img, "WEBP", quality=80), "heic": _encode(img, "HEIF", quality=60)}


def _outcome(data: bytes, name: str = "upload") -> str:
    """'ok' or the IntakeError code; any other exception fails the test that calls it."""
    try:
        photo = open_photo(data, name)
    except IntakeError as exc:
        assert exc.code in CODES and exc.message
        return exc.code
    assert photo.rgb.dtype == np.uint8 and photo.rgb.ndim == 3 and photo.rgb.shape[2] == 3
    assert max(photo.rgb.shape[:2]) <= 1024
    return "ok"


@FUZZ
@given(st.binary(max_size=4096))
def test_random_bytes_never_escape(data):
    _outcome(data)


MAGIC = [b"\xff\xd8\xff\xe0", b"\x89PNG\r\n\x1a\n", b"RIFF\x00\x10\x00\x00WEBPVP8 ",
         b"\x00\x00\x00\x18ftypheic", b"GIF89a", b"<svg", b"BM"]


@FUZZ
@given(st.sampled_from(MAGIC), st.binary(max_size=2048))
def test_valid_magic_with_garbage_never_escapes(magic, tail):
    assert _outcome(magic + tail) in CODES | {"ok"}


@FUZZ
@given(data=st.data())
def test_corrupted_and_truncated_files_never_escape(seeds, data):
    fmt = data.draw(st.sampled_from(sorted(seeds)))
    buf = bytearray(seeds[fmt])
    for _ in range(data.draw(st.integers(1, 8))):  # flip a few bytes anywhere, headers included
        pos = data.draw(st.integers(0, len(buf) - 1))
        buf[pos] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(buf)))
    _outcome(bytes(buf[:cut]))


def _exif_orientation(img: Image.Image, value: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = value
    return _encode(img, "JPEG", exif=exif.tobytes())


@pytest.mark.parametrize("value", [0, 9, 255, 65535])
def test_bogus_exif_orientation_is_ignored(faces_dir, value):
    img = upright(faces_dir / "p04_img30.jpg", 300)
    photo = open_photo(_exif_orientation(img, value), "odd.jpg")
    assert photo.original_size == img.size  # an unknown orientation leaves the pixels as they are


def _modes(img: Image.Image) -> dict[str, tuple[bytes, str]]:
    """Odd pixel formats and containers, with the expected outcome."""
    arr16 = (np.asarray(img.convert("L"), np.uint16) * 257)
    frames = [img.convert("P"), img.rotate(10).convert("P")]
    gif = io.BytesIO()
    frames[0].save(gif, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    apng = io.BytesIO()
    img.save(apng, "PNG", save_all=True, append_images=[img.rotate(10)], duration=100)
    awebp = io.BytesIO()
    img.save(awebp, "WEBP", save_all=True, append_images=[img.rotate(10)], duration=100)
    return {
        "cmyk_jpeg": (_encode(img.convert("CMYK"), "JPEG"), "ok"),
        "sixteen_bit_png": (_encode(Image.fromarray(arr16), "PNG"), "ok"),
        "palette_png": (_encode(img.convert("P"), "PNG"), "ok"),
        "greyscale_jpeg": (_encode(img.convert("L"), "JPEG"), "ok"),
        "greyscale_alpha_png": (_encode(img.convert("LA"), "PNG"), "ok"),
        "rgba_webp": (_encode(img.convert("RGBA"), "WEBP"), "ok"),
        "one_bit_png": (_encode(img.convert("1"), "PNG"), "ok"),
        "animated_png": (apng.getvalue(), "ok"),  # the first frame is the photo
        "animated_webp": (awebp.getvalue(), "ok"),
        "animated_gif": (gif.getvalue(), "unreadable"),
        "svg": (b'<svg xmlns="http://www.w3.org/2000/svg" width="4000" height="4000">'
                b'<image href="file:///etc/passwd"/></svg>', "unreadable"),
        "zero_bytes": (b"", "unreadable"),
        "html": (b"<html><script>alert(1)</script></html>", "unreadable"),
    }


def test_odd_pixel_formats_and_containers(faces_dir):
    img = upright(faces_dir / "p04_img30.jpg", 300)
    got = {name: _outcome(data, name) for name, (data, _) in _modes(img).items()}
    assert got == {name: want for name, (_, want) in _modes(img).items()}


@pytest.mark.parametrize("side", [40_000, 65_535])
def test_pixel_bomb_png_is_too_large(tmp_path, side):
    path = png_with_declared_size(tmp_path / "bomb.png", side, side)
    assert path.stat().st_size < 1_000_000
    assert _outcome(path.read_bytes()) == "too_large"


@pytest.mark.parametrize("name", [
    "../../etc/passwd", "..\\..\\boot.ini", "a\x00b.jpg", "ünïcödé 照片.JPG", "x" * 5000 + ".jpg",
    "/abs/path.png", "CON.jpg", ".hidden", "..", "", "name with spaces\n.webp", "a" * 300 + "." + "b" * 300,
])
def test_hostile_file_names_become_safe(name):
    safe = safe_filename(name)
    assert safe and len(safe) <= 90 and "/" not in safe and "\\" not in safe and "\x00" not in safe
    assert not safe.startswith(".") and ".." not in safe.replace("...", "")
    assert all(c.isascii() and (c.isalnum() or c in "._-") for c in safe)


def _corpus(tmp_path: Path, faces_dir: Path, seeds: dict[str, bytes]) -> Path:
    d = tmp_path / "corpus"
    d.mkdir()
    img = upright(faces_dir / "p04_img30.jpg", 300)
    for name, (data, _) in _modes(img).items():
        (d / f"{name}.bin").write_bytes(data)
    rng = np.random.default_rng(0)
    for fmt, data in seeds.items():
        (d / f"truncated.{fmt}").write_bytes(data[: len(data) // 3])
        flipped = bytearray(data)
        for pos in rng.integers(16, len(data), 12):
            flipped[pos] ^= 0xFF
        (d / f"flipped.{fmt}").write_bytes(bytes(flipped))
    png_with_declared_size(d / "bomb.png", 40_000, 40_000)
    (d / "random.jpg").write_bytes(rng.bytes(50_000))
    (d / "ünïcödé 照片 ..jpg").write_bytes(seeds["jpeg"])
    (d / ("long" * 60 + ".jpg")).write_bytes(seeds["jpeg"])
    return d


def test_capture_cli_survives_the_corpus_in_bounded_memory(tmp_path, faces_dir, seeds):
    """The whole corpus in one CLI run: every file gets a verdict, nothing raises, and the
    process's peak memory stays bounded (a 40000x40000 bomb decoded would need 1.6 GB)."""
    corpus = _corpus(tmp_path, faces_dir, seeds)
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    # Run the CLI in a child that reports its own peak RSS as its last stderr line. VmHWM belongs to
    # the process image (reset by exec); ru_maxrss would carry over the forking pytest's size.
    wrapper = ("import re, runpy, sys\n"
               "sys.argv = ['pipeline', *sys.argv[1:]]\n"
               "try:\n    runpy.run_module('pipeline', run_name='__main__')\n"
               "except SystemExit as e:\n    code = e.code\n"
               "hwm = re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1)\n"
               "print('PEAK_KB', hwm, file=sys.stderr)\n"
               "sys.exit(code)\n")
    proc = subprocess.run([sys.executable, "-c", wrapper, "capture", str(corpus), "--json"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode in (1, 2), proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    peak_mb = int(proc.stderr.strip().splitlines()[-1].split()[1]) / 1024
    report = json.loads(proc.stdout)
    files = sorted(p.name for p in corpus.iterdir())
    assert sorted(p["file"] for p in report["photos"]) == files
    by_file = {p["file"]: p for p in report["photos"]}
    assert by_file["bomb.png"]["reasons"][0]["code"] == "too_large"
    assert by_file["random.jpg"]["reasons"][0]["code"] == "unreadable"
    odd = by_file["ünïcödé 照片 ..jpg"]  # a good photo with an odd name decodes and is analysed
    assert not {r["code"] for r in odd["reasons"]} & CODES
    # Models included, the run stays far below what decoding the bomb would need (1.6 GB of pixels).
    assert peak_mb < 1200, f"capture CLI peaked at {peak_mb:.0f} MB"


# --------------------------------------------------------------------------- YAML presets and style guides
def _alias_bomb(levels: int = 9) -> str:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, levels)]
    return "\n".join(lines) + f"\nwardrobe: *a{levels - 1}\n"


HOSTILE_YAML = [
    # (case, text, words the error must contain)
    ("alias_bomb", _alias_bomb(), "aliases"),
    ("python_object_tag", "name: !!python/object/apply:os.system ['echo pwned']\n", "invalid YAML"),
    ("deep_nesting", "a: " + "[" * 5000 + "]" * 5000 + "\n", "nested too deeply"),
    ("list_root", "- name: acme\n- title: x\n", "expected a mapping"),
    ("scalar_root", "just a string\n", "expected a mapping"),
    ("empty", "", "an empty file"),
    ("duplicate_key", "name: acme\nname: evil\n", "duplicate key"),
    ("wrong_types", "name: 12\ntitle: [1, 2]\nversion: many\nframing: yes\nbackgrounds: {}\ngovernance: 3\n",
     "version"),
    ("tabs_and_garbage", "name:\t: : [\n", "invalid YAML"),
    ("path_in_background", "name: acme\ntitle: t\nversion: 1\nframing: {eye_line: 0.4, head_height: 0.4}\n"
     "backgrounds: [{id: x, kind: image, image: ../../../etc/passwd}]\ngovernance: {approvers: [a]}\n",
     "inside assets/"),
    ("url_in_background", "name: acme\ntitle: t\nversion: 1\nframing: {eye_line: 0.4, head_height: 0.4}\n"
     "backgrounds: [{id: x, kind: image, image: 'http://example.com/x.jpg'}]\ngovernance: {approvers: [a]}\n",
     "inside assets/"),
]


@pytest.mark.parametrize("case,text,words", HOSTILE_YAML, ids=[c[0] for c in HOSTILE_YAML])
def test_hostile_style_guides_get_clear_errors(case, text, words):
    from pipeline.presets import PresetError, parse_style_guide

    with pytest.raises(PresetError) as info:
        parse_style_guide(text, "upload.yaml")
    assert words in str(info.value) and str(info.value).startswith("upload.yaml")


@pytest.mark.parametrize("case,text,words", HOSTILE_YAML[:5], ids=[c[0] for c in HOSTILE_YAML[:5]])
def test_hostile_preset_files_get_clear_errors(tmp_path, case, text, words):
    from pipeline.presets import PresetError, load_preset

    path = tmp_path / "evil.yaml"
    path.write_text(text)
    with pytest.raises(PresetError, match=words):
        load_preset(path)


def test_huge_and_binary_yaml_refused(tmp_path):
    from pipeline.presets import PresetError, load_preset, parse_style_guide

    huge = "name: acme\nwardrobe: '" + "x" * 200_000 + "'\n"
    with pytest.raises(PresetError, match="at most"):
        parse_style_guide(huge)
    with pytest.raises(PresetError, match="at most"):
        parse_style_guide(huge.encode())
    (tmp_path / "big.yaml").write_text(huge)
    with pytest.raises(PresetError, match="at most"):
        load_preset(tmp_path / "big.yaml")
    with pytest.raises(PresetError, match="UTF-8"):
        parse_style_guide(b"\xff\xfe\x00garbage")


def test_only_safe_yaml_loading_in_the_code():
    """yaml.load with an unsafe Loader, or yaml.unsafe_load / full_load, appear nowhere."""
    import re

    bad = re.compile(r"yaml\.(unsafe_load|full_load|load_all)\(|Loader=yaml\.(Loader|FullLoader|UnsafeLoader)")
    offenders = [str(p) for p in (ROOT / "pipeline").rglob("*.py") if bad.search(p.read_text())]
    offenders += [str(p) for p in [ROOT / "app.py", *(ROOT / "ui").rglob("*.py")] if bad.search(p.read_text())]
    assert offenders == []
