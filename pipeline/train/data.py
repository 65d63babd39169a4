"""Training samples from photos: SDXL aspect buckets, face crops and full-photo samples.

Photos that fail to decode are skipped and counted, never named.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from PIL import Image

from .config import TrainingError

log = logging.getLogger(__name__)

# SDXL's training buckets (width, height) at 1024; scaled to ``resolution``.
BUCKETS_1024 = ((1024, 1024), (896, 1152), (1152, 896), (832, 1216), (1216, 832))
FACE_EXPAND = 2.2


@dataclass
class Sample:
    pixels: torch.Tensor  # 3xHxW in [-1, 1]
    original_size: tuple[int, int]  # (h, w)
    crop_top_left: tuple[int, int]  # (top, left)
    kind: str  # "face" | "full"


def buckets(resolution: int, multiple: int) -> list[tuple[int, int]]:
    """SDXL's (w, h) buckets scaled to ``resolution``, each side a multiple of ``multiple``."""
    out = []
    for w, h in BUCKETS_1024:
        size = tuple(max(multiple, int(round(s * resolution / 1024 / multiple)) * multiple) for s in (w, h))
        if size not in out:
            out.append(size)
    return out


def _to_tensor(img: Image.Image) -> torch.Tensor:
    arr = np.asarray(img.convert("RGB"), dtype=np.float32) / 127.5 - 1.0
    return torch.from_numpy(arr).permute(2, 0, 1).contiguous()


def face_crop_box(face_box, width: int, height: int, expand: float = FACE_EXPAND) -> tuple[int, int, int, int]:
    """A square (left, top, right, bottom) ``expand`` times the face's longer side, centred on the
    face and shifted/shrunk to lie inside the image."""
    x, y, w, h = face_box
    side = min(expand * max(w, h), width, height)
    cx, cy = x + w / 2, y + h / 2
    left = min(max(0.0, cx - side / 2), width - side)
    top = min(max(0.0, cy - side / 2), height - side)
    side_i = int(round(side))
    left_i, top_i = int(round(left)), int(round(top))
    left_i, top_i = min(left_i, width - side_i), min(top_i, height - side_i)
    return left_i, top_i, left_i + side_i, top_i + side_i


def full_sample(img: Image.Image, resolution: int, multiple: int) -> Sample:
    """The whole photo resized to cover the closest bucket, centre-cropped."""
    W, H = img.size
    bw, bh = min(buckets(resolution, multiple), key=lambda b: abs(math.log((b[0] / b[1]) / (W / H))))
    f = max(bw / W, bh / H)
    rw, rh = max(bw, int(round(W * f))), max(bh, int(round(H * f)))
    resized = img.resize((rw, rh), Image.Resampling.LANCZOS)
    left, top = (rw - bw) // 2, (rh - bh) // 2
    crop = resized.crop((left, top, left + bw, top + bh))
    return Sample(_to_tensor(crop), (H, W), (top, left), "full")


def face_sample(img: Image.Image, face_box, resolution: int) -> Sample:
    box = face_crop_box(face_box, *img.size)
    crop = img.crop(box).resize((resolution, resolution), Image.Resampling.LANCZOS)
    side = box[2] - box[0]
    # SDXL micro-conditioning: the crop is the "original" image (its size in source pixels).
    return Sample(_to_tensor(crop), (side, side), (0, 0), "face")


def _detect_face(img: Image.Image):
    """Largest face box (x, y, w, h) in full-image pixels, or None."""
    from ..capture import default_analyzer

    W, H = img.size
    f = min(1.0, 1024 / max(W, H))
    small = img if f == 1.0 else img.resize((max(1, round(W * f)), max(1, round(H * f))), Image.Resampling.BILINEAR)
    rows = default_analyzer().detect(np.asarray(small.convert("RGB")))
    if not len(rows):
        return None
    x, y, w, h = (float(v) for v in rows[0][:4])
    sx, sy = W / small.width, H / small.height
    return x * sx, y * sy, w * sx, h * sy


def build_samples(photos: Sequence, resolution: int, multiple: int) -> tuple[list[Sample], int]:
    """Face crops and full-photo samples from the photos; returns (samples, skipped count).

    Photos that fail to decode are skipped (counted, never named). A photo without a detectable
    face contributes only its full sample.
    """
    from ..intake import load_full

    samples: list[Sample] = []
    skipped = 0
    for path in photos:
        try:
            img = load_full(path).convert("RGB")
        except Exception as exc:  # IntakeError or anything a broken file throws
            log.debug("photo decode failed: %s", type(exc).__name__)
            skipped += 1
            continue
        try:
            box = _detect_face(img)
        except Exception as exc:
            log.debug("face detection failed: %s", type(exc).__name__)
            box = None
        if box is not None:
            samples.append(face_sample(img, box, resolution))
        samples.append(full_sample(img, resolution, multiple))
    if skipped:
        log.warning("%d of %d photos could not be read and were skipped", skipped, len(photos))
    if not samples:
        raise TrainingError(f"None of the {len(photos)} photos could be read; there is nothing to train on.")
    return samples, skipped

