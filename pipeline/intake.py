"""Open uploaded photos safely and bring them to one analysis form.

Every upload becomes a :class:`Photo`: decoded, EXIF-oriented, converted to sRGB and
reduced to the analysis size. Anything that cannot be used raises :class:`IntakeError`
with a stable reason code, so one bad file never takes a batch down with it.
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import logging
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError
from pillow_heif import register_heif_opener

register_heif_opener()  # adds HEIC/HEIF to Image.open; it applies EXIF orientation itself

log = logging.getLogger(__name__)

SRGB_PROFILE = ImageCms.createProfile("sRGB")
ALLOWED_FORMATS = {"JPEG", "MPO", "PNG", "WEBP", "HEIF"}


@dataclass(frozen=True)
class IntakeLimits:
    # 40 MB holds any phone photo, including 50 MP JPEGs and ProRAW-sized HEICs.
    max_bytes: int = 40 * 1024 * 1024
    # 120 MP covers 108/200 MP phone sensors in binned mode; beyond it is a bomb, not a selfie.
    max_pixels: int = 120_000_000
    # A side this long with few pixels (e.g. 100000x10) is a crafted file, not a photo.
    max_side: int = 20_000
    max_aspect: float = 6.0
    # Faces are analysed at this longest side: enough for a 1024 px training crop check,
    # cheap enough for 20 photos in about a second.
    analysis_side: int = 1024


class IntakeError(Exception):
    """A file that cannot be used. ``code`` is one of the stable reason codes."""

    def __init__(self, code: str, message: str, value: float | None = None, threshold: float | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.value = value
        self.threshold = threshold


@dataclass
class Photo:
    name: str
    rgb: np.ndarray  # HxWx3 uint8, sRGB, oriented, at most analysis_side on its long side
    original_size: tuple[int, int]  # (width, height) after orientation
    format: str
    sha256: str
    num_bytes: int
    notes: list[str] = field(default_factory=list)

    @property
    def scale(self) -> float:
        """Analysis pixels per original pixel."""
        return self.rgb.shape[1] / self.original_size[0]


def _read_bytes(source: str | Path | bytes, limits: IntakeLimits) -> bytes:
    if isinstance(source, bytes):
        data = source
    else:
        path = Path(source)
        try:
            size = path.stat().st_size
        except OSError as exc:
            raise IntakeError("unreadable", f"The file could not be opened ({exc.strerror or exc}).") from exc
        if size > limits.max_bytes:
            raise IntakeError(
                "too_large",
                f"The file is {size / 2**20:.1f} MB; the limit is {limits.max_bytes / 2**20:.0f} MB. "
                "Export a smaller JPEG from your phone's gallery.",
                value=size, threshold=limits.max_bytes,
            )
        data = path.read_bytes()
    if len(data) > limits.max_bytes:
        raise IntakeError("too_large", f"The file is larger than {limits.max_bytes / 2**20:.0f} MB.",
                          value=len(data), threshold=limits.max_bytes)
    if not data:
        raise IntakeError("unreadable", "The file is empty.")
    return data


def _check_dimensions(width: int, height: int, limits: IntakeLimits) -> None:
    pixels = width * height
    if pixels > limits.max_pixels or max(width, height) > limits.max_side:
        raise IntakeError(
            "too_large",
            f"The image is {width}x{height} pixels ({pixels / 1e6:.0f} MP); the limit is "
            f"{limits.max_pixels / 1e6:.0f} MP and {limits.max_side} px per side.",
            value=pixels, threshold=limits.max_pixels,
        )
    if min(width, height) < 1 or max(width, height) / min(width, height) > limits.max_aspect:
        raise IntakeError(
            "unreadable",
            f"The image is {width}x{height} pixels, which is not a photo shape.",
            value=max(width, height) / max(1, min(width, height)), threshold=limits.max_aspect,
        )


def _to_srgb(img: Image.Image, notes: list[str]) -> Image.Image:
    """Convert to 8-bit RGB in sRGB, honouring an embedded ICC profile."""
    icc = img.info.get("icc_profile")
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit greyscale: Pillow's convert("RGB") would clip every value above 255 to white.
        img = Image.fromarray((np.asarray(img, dtype=np.uint32) >> 8).astype(np.uint8), "L")
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        # Transparent pixels become white, the way a photo viewer would show them.
        img = img.convert("RGBA")
        background = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, img)
    if icc:
        try:
            if img.mode not in ("RGB", "CMYK", "L"):
                img = img.convert("RGB")
            transform = _srgb_transform(icc, img.mode)
            return img.convert("RGB") if transform is None else ImageCms.applyTransform(img, transform)
        except (ImageCms.PyCMSError, OSError, ValueError):
            notes.append("The embedded colour profile is broken; colours were read as sRGB.")
    return img.convert("RGB")


@functools.lru_cache(maxsize=16)
def _srgb_transform(icc: bytes, mode: str) -> ImageCms.ImageCmsTransform | None:
    """The transform from one embedded profile to sRGB, built once; None when it already is sRGB.

    Phones embed the same few profiles in every photo, so building a transform per photo (and,
    for sRGB-tagged photos, running an identity transform over every pixel) was pure overhead.
    """
    source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
    if mode == "RGB" and _is_srgb(source):
        return None
    # NOCACHE: without LCMS's one-pixel cache, one transform may run in several threads at once.
    return ImageCms.buildTransform(source, SRGB_PROFILE, mode, "RGB", flags=ImageCms.Flags.NOCACHE)


def _is_srgb(profile: ImageCms.ImageCmsProfile) -> bool:
    """True when converting to sRGB moves no probe colour by more than one level.

    Judges what the profile does, not its name ("sRGB IEC61966-2.1", "sRGB built-in", vendor copies).
    """
    levels = range(0, 256, 5)
    probe = [(v, v, v) for v in levels] + [(v, 0, 0) for v in levels] + [(0, v, 0) for v in levels] + [(0, 0, v) for v in levels]
    img = Image.new("RGB", (len(probe), 1))
    img.putdata(probe)
    out = ImageCms.profileToProfile(img, profile, SRGB_PROFILE, outputMode="RGB")
    return max(abs(a - b) for a, b in zip(img.tobytes(), out.tobytes())) <= 1


@contextlib.contextmanager
def _decoding(data: bytes, limits: IntakeLimits):
    """Open ``data`` lazily after the format and size checks; any decoding failure inside the
    block becomes an :class:`IntakeError` with a stable code."""
    try:
        with warnings.catch_warnings():
            # Our own pixel cap applies before decoding; Pillow's bomb warning would only be noise.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            if img.format not in ALLOWED_FORMATS:
                raise IntakeError("unreadable", f"{img.format} files are not supported; use JPEG, PNG, WebP or HEIC.")
            _check_dimensions(*img.size, limits)
            yield img
    except IntakeError:
        raise
    except Image.DecompressionBombError as exc:
        raise IntakeError("too_large", "The image declares more pixels than allowed.") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        # Pillow reports truncated/corrupt data as OSError/SyntaxError; the detail stays out of logs.
        log.debug("decode failed: %s", type(exc).__name__)
        raise IntakeError("unreadable", "The file is not a readable image (it may be damaged, truncated or not a photo).") from exc


def open_photo(source: str | Path | bytes, name: str | None = None, limits: IntakeLimits = IntakeLimits()) -> Photo:
    """Decode one upload into a :class:`Photo`, or raise :class:`IntakeError`."""
    if name is None:
        name = Path(source).name if not isinstance(source, bytes) else "upload"
    data = _read_bytes(source, limits)
    notes: list[str] = []
    with _decoding(data, limits) as img:
        fmt, original = img.format, _oriented_size(img)
        if img.format in ("JPEG", "MPO"):
            # DCT scaling decodes a 12-50 MP JPEG at 1/2..1/8 size directly: most of the cost saved.
            # Accept a draft down to 3/4 of the analysis side (4032 px -> 1008 px) rather than
            # decoding twice as many pixels only to throw them away.
            f = 0.75 * limits.analysis_side / max(img.size)
            if f < 1:
                img.draft("RGB", (int(img.width * f), int(img.height * f)))
        img.load()
        img = ImageOps.exif_transpose(img)
        if img.mode in ("RGB", "RGBA", "L", "CMYK"):
            # Shrink first: colour conversion (and everything after) then touches 1 MP, not 12-50.
            img.thumbnail((limits.analysis_side, limits.analysis_side), Image.Resampling.LANCZOS, reducing_gap=2.0)
        img = _to_srgb(img, notes)
        img.thumbnail((limits.analysis_side, limits.analysis_side), Image.Resampling.LANCZOS, reducing_gap=2.0)
    return Photo(
        name=name,
        rgb=np.asarray(img, dtype=np.uint8),
        original_size=original,
        format=fmt,
        sha256=hashlib.sha256(data).hexdigest(),
        num_bytes=len(data),
        notes=notes,
    )


def _oriented_size(img: Image.Image) -> tuple[int, int]:
    """Full-resolution (w, h) as the photo will stand after EXIF orientation (read before drafting)."""
    w, h = img.size
    # Orientations 5-8 are the 90/270-degree turns, which swap the sides.
    return (h, w) if img.getexif().get(0x0112, 1) in (5, 6, 7, 8) else (w, h)


def load_full(source: str | Path | bytes, limits: IntakeLimits = IntakeLimits()) -> Image.Image:
    """Decode at full resolution (oriented, sRGB) for training and export, with the same safety checks."""
    data = _read_bytes(source, limits)
    with _decoding(data, limits) as img:
        img.load()
        return _to_srgb(ImageOps.exif_transpose(img), [])
