"""Intake: decoding, orientation, colour, limits and every flavour of broken upload."""
from __future__ import annotations

import hashlib
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms

from pipeline.intake import IntakeError, IntakeLimits, load_full, open_photo

from .conftest import upright

BASE = "p04_img30.jpg"  # landscape, one frontal face


def png_with_declared_size(path: Path, width: int, height: int) -> Path:
    """A valid 1-bit PNG of width x height: a few KB on disk, a huge image once decoded."""
    row = b"\x00" * (1 + (width + 7) // 8)  # filter byte + packed bits
    comp = zlib.compressobj(9)
    idat = b"".join(comp.compress(row) for _ in range(height)) + comp.flush()

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    return path


@pytest.fixture(scope="module")
def base_img(faces_dir) -> Image.Image:
    return upright(faces_dir / BASE, max_side=640)


@pytest.fixture(scope="module")
def base_face(analyzer, base_img):
    face = analyzer.analyze(np.asarray(base_img)).primary
    assert face is not None
    return face


# --------------------------------------------------------------------------- decoding


def test_jpeg_decodes_to_bounded_srgb_photo(faces_dir):
    src = faces_dir / "p02_img49.jpg"  # 4352 x 2903
    data = src.read_bytes()
    photo = open_photo(src)
    full = upright(src)
    assert photo.name == src.name and photo.format == "JPEG"
    assert photo.original_size == full.size
    assert photo.rgb.dtype == np.uint8 and photo.rgb.ndim == 3 and photo.rgb.shape[2] == 3
    long_side = max(photo.rgb.shape[:2])
    limits = IntakeLimits()
    assert 0.75 * limits.analysis_side <= long_side <= limits.analysis_side
    # Aspect ratio kept, scale consistent.
    assert photo.rgb.shape[1] / photo.rgb.shape[0] == pytest.approx(full.width / full.height, rel=0.01)
    assert photo.scale == pytest.approx(photo.rgb.shape[1] / full.width)
    assert photo.num_bytes == len(data) and photo.sha256 == hashlib.sha256(data).hexdigest()
    # Same picture as a plain decode, reduced.
    ref = np.asarray(full.resize((photo.rgb.shape[1], photo.rgb.shape[0]), Image.Resampling.LANCZOS), dtype=np.float32)
    assert float(np.abs(ref - photo.rgb).mean()) < 6


def test_bytes_source_gets_a_default_name(faces_dir):
    photo = open_photo((faces_dir / BASE).read_bytes())
    assert photo.name == "upload" and photo.format == "JPEG"
    assert open_photo((faces_dir / BASE).read_bytes(), name="me.jpg").name == "me.jpg"


# EXIF orientation -> how the camera stored the pixels relative to the upright picture.
STORED = {
    3: Image.Transpose.ROTATE_180,
    6: Image.Transpose.ROTATE_90,   # stored turned 90 deg counter-clockwise; viewers turn it back clockwise
    8: Image.Transpose.ROTATE_270,
}


@pytest.mark.parametrize("fmt", ["JPEG", "HEIF"])
@pytest.mark.parametrize("orientation", [6, 8, 3])
def test_exif_orientation_is_applied(tmp_path, analyzer, base_img, base_face, orientation, fmt):
    exif = Image.Exif()
    exif[0x0112] = orientation
    stored = base_img.transpose(STORED[orientation])
    path = tmp_path / f"rotated.{'jpg' if fmt == 'JPEG' else 'heic'}"
    stored.save(path, fmt, exif=exif.tobytes(), quality=92)

    photo = open_photo(path)
    assert photo.format == fmt
    # The photo stands upright: sizes are those of the upright picture, not of the stored pixels.
    assert photo.original_size == base_img.size
    assert photo.rgb.shape[:2] == (base_img.height, base_img.width)
    if orientation in (6, 8):
        assert photo.rgb.shape[:2] == (stored.width, stored.height) != (stored.height, stored.width)
    diff = float(np.abs(photo.rgb.astype(np.float32) - np.asarray(base_img, dtype=np.float32)).mean())
    assert diff < 8, f"decoded pixels differ from the upright picture by {diff:.1f} on average"
    face = analyzer.analyze(photo.rgb).primary
    assert face is not None
    assert face.roll == pytest.approx(base_face.roll, abs=3)
    lm = face.landmarks
    assert (lm["left_eye"][1] + lm["right_eye"][1]) / 2 < lm["nose"][1] < lm["mouth_left"][1]


def test_heic_decodes(tmp_path, base_img, analyzer):
    from pillow_heif import register_heif_opener

    register_heif_opener()
    path = tmp_path / "photo.heic"
    base_img.save(path, "HEIF", quality=90)
    photo = open_photo(path)
    assert photo.format == "HEIF"
    assert photo.original_size == base_img.size
    assert float(np.abs(photo.rgb.astype(np.float32) - np.asarray(base_img, dtype=np.float32)).mean()) < 8
    assert analyzer.analyze(photo.rgb).primary is not None


def test_webp_decodes(tmp_path, base_img):
    path = tmp_path / "photo.webp"
    base_img.save(path, "WEBP", quality=90)
    photo = open_photo(path)
    assert photo.format == "WEBP" and photo.original_size == base_img.size


def test_transparent_png_is_composited_on_white(tmp_path, base_img):
    rgba = base_img.convert("RGBA")
    alpha = np.full((base_img.height, base_img.width), 255, np.uint8)
    alpha[:40, :] = 0  # a fully transparent band at the top
    rgba.putalpha(Image.fromarray(alpha))
    path = tmp_path / "cutout.png"
    rgba.save(path)
    photo = open_photo(path)
    assert photo.format == "PNG" and photo.rgb.shape == (base_img.height, base_img.width, 3)
    assert photo.rgb[:35].min() >= 250  # transparent -> white
    assert float(np.abs(photo.rgb[60:].astype(np.float32) - np.asarray(base_img)[60:]).mean()) < 2


def test_sixteen_bit_grayscale_png_keeps_its_tones(tmp_path, base_img, analyzer):
    """A 16-bit greyscale PNG (as some editors and scanners write) must decode to the same tones
    as its 8-bit version, not be clipped to white."""
    gray8 = np.asarray(base_img.convert("L"))
    path = tmp_path / "gray16.png"
    Image.fromarray(gray8.astype(np.uint16) * 257).save(path)
    with Image.open(path) as probe:
        assert probe.mode.startswith("I")  # really a 16-bit file
    photo = open_photo(path)
    decoded = photo.rgb.astype(np.float32).mean(axis=2)
    mean_abs = float(np.abs(decoded - gray8).mean())
    assert mean_abs < 3, (
        f"16-bit greyscale decoded {mean_abs:.1f} levels away from the 8-bit tones "
        f"(decoded mean {decoded.mean():.1f}, expected {gray8.mean():.1f})"
    )
    assert analyzer.analyze(photo.rgb).primary is not None


def test_embedded_icc_profile_is_converted_to_srgb(tmp_path, base_img):
    # Tagged with an sRGB profile, the colour conversion must be (near) identity.
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    path = tmp_path / "tagged.jpg"
    base_img.save(path, "JPEG", quality=95, icc_profile=srgb)
    photo = open_photo(path)
    assert photo.notes == []
    assert float(np.abs(photo.rgb.astype(np.float32) - np.asarray(base_img, dtype=np.float32)).mean()) < 4


def test_broken_icc_profile_falls_back_to_srgb_with_a_note(tmp_path, base_img):
    path = tmp_path / "badprofile.jpg"
    base_img.save(path, "JPEG", quality=95, icc_profile=b"not really an ICC profile" * 8)
    photo = open_photo(path)
    assert photo.rgb.shape[:2] == (base_img.height, base_img.width)
    assert any("profile" in note for note in photo.notes)


def test_load_full_keeps_full_resolution_and_orientation(faces_dir):
    src = faces_dir / "p02_img49.jpg"
    full = load_full(src)
    assert full.mode == "RGB" and full.size == upright(src).size


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
@pytest.mark.parametrize("side", [12000, 20000])
def test_load_full_refuses_pixel_bombs_as_too_large(tmp_path, side):
    """Training and export decode at full size: a bomb must get the same code there as in open_photo."""
    with pytest.raises(IntakeError) as info:
        load_full(png_with_declared_size(tmp_path / "bomb.png", side, side))
    assert info.value.code == "too_large", info.value.message


# --------------------------------------------------------------------------- broken uploads


def _truncated(tmp_path: Path, src: Path) -> Path:
    data = src.read_bytes()
    path = tmp_path / "truncated.jpg"
    path.write_bytes(data[: len(data) // 2])
    return path


def _text(tmp_path: Path, src: Path) -> Path:
    path = tmp_path / "notes.jpg"
    path.write_text("This is a shopping list, not a photo.\n" * 20)
    return path


def _empty(tmp_path: Path, src: Path) -> Path:
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    return path


def _as_format(fmt: str, ext: str):
    def build(tmp_path: Path, src: Path) -> Path:
        path = tmp_path / f"photo.{ext}"
        upright(src, 600).save(path, fmt)
        return path
    return build


def _banner(tmp_path: Path, src: Path) -> Path:
    return png_with_declared_size(tmp_path / "banner.png", 3000, 200)


def _missing(tmp_path: Path, src: Path) -> Path:
    return tmp_path / "does-not-exist.jpg"


BROKEN = [
    # (case, builder, expected code)
    ("truncated_jpeg", _truncated, "unreadable"),
    ("text_named_jpg", _text, "unreadable"),
    ("empty_file", _empty, "unreadable"),
    ("missing_file", _missing, "unreadable"),
    ("bmp_not_supported", _as_format("BMP", "bmp"), "unreadable"),
    ("gif_not_supported", _as_format("GIF", "gif"), "unreadable"),
    ("tiff_not_supported", _as_format("TIFF", "tif"), "unreadable"),
    ("banner_shape", _banner, "unreadable"),
    ("pixel_bomb_20000", lambda tmp, src: png_with_declared_size(tmp / "bomb20k.png", 20000, 20000), "too_large"),
    ("pixel_bomb_12000", lambda tmp, src: png_with_declared_size(tmp / "bomb12k.png", 12000, 12000), "too_large"),
    ("side_over_limit", lambda tmp, src: png_with_declared_size(tmp / "strip.png", 100_000, 10), "too_large"),
]


@pytest.mark.parametrize("case,builder,code", BROKEN, ids=[c[0] for c in BROKEN])
def test_broken_upload_raises_intake_error_with_code(tmp_path, faces_dir, case, builder, code):
    path = builder(tmp_path, faces_dir / BASE)
    with pytest.raises(IntakeError) as info:
        open_photo(path)
    assert info.value.code == code, info.value.message
    assert info.value.message
    if code == "too_large" and path.exists():
        assert path.stat().st_size < 200_000  # a bomb: tiny file, huge declared size
    # The same bytes given directly fail the same way (except a missing file, which has no bytes).
    if path.exists() and path.stat().st_size:
        with pytest.raises(IntakeError) as info2:
            open_photo(path.read_bytes())
        assert info2.value.code == code


@pytest.mark.parametrize("as_bytes", [False, True])
def test_byte_limit(faces_dir, as_bytes):
    src = faces_dir / BASE
    size = src.stat().st_size
    limits = IntakeLimits(max_bytes=size // 2)
    with pytest.raises(IntakeError) as info:
        open_photo(src.read_bytes() if as_bytes else src, limits=limits)
    assert info.value.code == "too_large"
    assert info.value.value == size and info.value.threshold == limits.max_bytes
    # Just under the limit is fine.
    assert open_photo(src, limits=IntakeLimits(max_bytes=size)).num_bytes == size


def test_pixel_limit_is_configurable(faces_dir):
    with pytest.raises(IntakeError) as info:
        open_photo(faces_dir / BASE, limits=IntakeLimits(max_pixels=1_000_000))
    assert info.value.code == "too_large"
    assert info.value.value > info.value.threshold == 1_000_000


def test_image_under_a_phone_sized_limit_is_not_a_bomb(tmp_path):
    """A 24 MP image is under the default limits: only a real bomb is refused."""
    path = png_with_declared_size(tmp_path / "big_ok.png", 6000, 4000)
    photo = open_photo(path)
    assert photo.original_size == (6000, 4000)
    assert max(photo.rgb.shape[:2]) <= IntakeLimits().analysis_side
