"""Landmark-based placement: the same eye line and head size for every member.

The crop is a scale-and-translate map from original photo pixels to the output canvas:

    out = S * (p - eyes) + (W / 2, eye_line * H)

with ``S = head_height * H / head`` and ``head = 2 * (chin - eyes)`` (framing.head_geometry without
a mask: hair volume differs between people and must not change the face size). Where the canvas
reaches past the photo at the top or the sides, it is filled with the new background later. Below
the body a fill would show a cut, so there the head is enlarged about the eyes instead, and the
result says so (``crop_padded_below``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from ..faces import FaceInfo
from ..framing import FramingSpec, head_geometry

# A mask value counts as "person" above this.
PERSON = 0.5
WORKING_WIDTH = 1200


def working_size(spec: FramingSpec, width: int = WORKING_WIDTH) -> tuple[int, int]:
    """Output (w, h) at ``width`` with the spec's aspect exactly (1200x1500 for 4:5, 1200x1200 for 1:1)."""
    p, q = spec.ratio()
    k = max(1, round(width / p))
    return p * k, q * k


@dataclass
class Placement:
    scale: float  # output px per ORIGINAL px
    eye: tuple[float, float]  # eye midpoint in original px
    size: tuple[int, int]  # output (w, h)
    eye_line: float
    original_size: tuple[int, int]
    zoom: float = 1.0  # achieved head size / asked (> 1 when enlarged to avoid a cut below)
    padded: dict | None = None  # canvas px beyond the photo per side (after any zoom)

    def matrix(self, pixels_per_original: float) -> np.ndarray:
        """2x3 affine from an image of the photo at ``pixels_per_original`` to the output canvas."""
        a = self.scale / pixels_per_original
        W, H = self.size
        ex, ey = self.eye[0] * pixels_per_original, self.eye[1] * pixels_per_original
        return np.array([[a, 0.0, W / 2 - a * ex], [0.0, a, self.eye_line * H - a * ey]], np.float64)

    def to_output(self, pts: np.ndarray, pixels_per_original: float) -> np.ndarray:
        m = self.matrix(pixels_per_original)
        pts = np.asarray(pts, np.float64)
        return pts[..., :2] * m[0, 0] + m[:, 2]

    def source_box(self) -> tuple[float, float, float, float]:
        """The canvas in original px (may reach outside the photo)."""
        W, H = self.size
        x0 = self.eye[0] - W / 2 / self.scale
        y0 = self.eye[1] - self.eye_line * H / self.scale
        return x0, y0, x0 + W / self.scale, y0 + H / self.scale


def plan(face: FaceInfo, analysis_size: tuple[int, int], analysis_scale: float, original_size: tuple[int, int],
         spec: FramingSpec, size: tuple[int, int], person_mask: np.ndarray | None) -> Placement:
    """Placement of ``face`` (found in an analysis image ``analysis_scale`` px per original px)."""
    g = head_geometry(face, analysis_size, None)  # landmarks only: see the module notes
    W, H = size
    ow, oh = original_size
    eye = (g.eye_x / analysis_scale, g.eye_y / analysis_scale)
    head = max(2.0 * (g.chin_y - g.eye_y), 1.0) / analysis_scale
    scale = spec.head_height * H / head
    zoom = 1.0
    below = (1 - spec.eye_line) * H / scale - (oh - eye[1])  # original px the canvas needs under the photo
    if below > 0.5 and _touches(person_mask, "bottom", eye, W / 2 / scale, analysis_scale):
        # Enlarge about the eyes just enough for the photo's bottom edge to reach the canvas bottom.
        needed = (1 - spec.eye_line) * H / max(oh - eye[1], 1.0)
        zoom = needed / scale
        scale = needed
    p = Placement(scale, eye, (W, H), spec.eye_line, (ow, oh), zoom)
    x0, y0, x1, y1 = p.source_box()
    p.padded = {side: int(max(0, round(v * scale))) for side, v in
                (("left", -x0), ("top", -y0), ("right", x1 - ow), ("bottom", y1 - oh))}
    p.padded = {k: v for k, v in p.padded.items() if v > 0}
    return p


def _touches(mask: np.ndarray | None, side: str, eye: tuple[float, float], half_w: float, s: float) -> bool:
    """Does the person reach the photo's ``side`` edge within the canvas columns?"""
    if mask is None:
        return True  # unknown: assume a body is there (the safe choice below the chin)
    h, w = mask.shape[:2]
    c0, c1 = int(max(0, (eye[0] - half_w) * s)), int(min(w, math.ceil((eye[0] + half_w) * s)))
    if side == "bottom" and c1 > c0:
        return bool((mask[-2:, c0:c1] > PERSON).mean() > 0.02)
    return False


def edge_cuts(mask: np.ndarray | None, p: Placement, analysis_scale: float, share: float) -> list[str]:
    """Sides where the canvas extends past the photo and the person touches that edge (a visible cut)."""
    if mask is None or not p.padded:
        return []
    h, w = mask.shape[:2]
    x0, y0, x1, y1 = (v * analysis_scale for v in p.source_box())
    r0, r1 = int(max(0, y0)), int(min(h, y1))
    c0, c1 = int(max(0, x0)), int(min(w, x1))
    strips = {"left": mask[r0:r1, :2], "right": mask[r0:r1, -2:], "top": mask[:2, c0:c1], "bottom": mask[-2:, c0:c1]}
    cut = []
    for side in p.padded:
        strip = strips[side]
        if strip.size and (strip > PERSON).any(axis=1 if side in ("left", "right") else 0).mean() >= share:
            cut.append(side)
    return cut


def warp(img: np.ndarray, p: Placement, pixels_per_original: float, interpolation: int | None = None,
         border: float | tuple = 0) -> np.ndarray:
    """``img`` (the photo at ``pixels_per_original``) on the output canvas; outside is ``border``."""
    m = p.matrix(pixels_per_original)
    if interpolation is None and m[0, 0] < 0.6:
        # warpAffine has no area filter: past ~1.7x reduction shrink first with one (no aliasing);
        # below that, bilinear sampling aliases too little to see and saves a full-frame pass.
        f = m[0, 0]
        img = cv2.resize(img, (max(1, round(img.shape[1] * f)), max(1, round(img.shape[0] * f))),
                         interpolation=cv2.INTER_AREA)
        m = p.matrix(pixels_per_original * img.shape[1] / (img.shape[1] / f))
    if interpolation is None:
        # Upscaling wants a smoother kernel; a mild reduction is fine bilinear.
        interpolation = cv2.INTER_CUBIC if m[0, 0] > 1.01 else cv2.INTER_LINEAR
    return cv2.warpAffine(img, m, p.size, flags=interpolation, borderMode=cv2.BORDER_CONSTANT, borderValue=border)
