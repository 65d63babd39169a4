"""Colour normalisation measured on the face skin: white balance (CCT), exposure (L*), saturation.

The face is the one thing every portrait shares, so the grade is measured there: mean correlated
colour temperature (McCamy, as review.cct_mccamy) and mean CIE L* of the skin pixels. The correction is

1. a white-balance gain in linear sRGB along the Planckian locus (a shift in mired, luminance kept),
2. an exposure curve on L* (``L' = 100 (L/100)^gamma``: black and white stay put, nothing clips),
3. the guide's saturation multiplier on a*/b*,

each solved on the face sample so that the *finished* face hits the targets, and each bounded so
that a bad measurement (a beard, a coloured lamp, a tiny face) cannot wreck a photo.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import cv2
import numpy as np
from skimage.color.colorconv import rgb_from_xyz, xyz_from_rgb

from ..review import cct_mccamy

log = logging.getLogger(__name__)

# Skin is not grey: correctly balanced portraits (sRGB, D65 white) measured a face CCT of 3750-3900 K
# on the real photos in ../shared/testdata/faces. The guide's white_balance_k is read the way a
# photographer reads a white balance: the light the portrait should look lit by. So the face target
# is this neutral skin CCT moved by the mired difference between that light and sRGB's D65 white
# (5500 K: a slightly warmer face than D65 neutral). Taking 5500 K as the skin's own CCT turned every
# face grey-blue.
SKIN_NEUTRAL_K = 3800.0
D65_K = 6504.0
MAX_MIRED_SHIFT = 100.0  # about 5500 K -> 3500..12800 K: any real indoor/outdoor cast, not a neon sign
GAMMA_RANGE = (0.6, 1.7)  # L* 40 -> ~58 .. ~21 at the extremes
# Exposure moves the face by at most this much L*: darker skin must stay darker skin. A guide's single
# exposure target would otherwise brighten a dark-skinned member's face towards a light-skinned mean.
MAX_L_SHIFT = 12.0
MIN_SKIN_PIXELS = 200
MAX_SAMPLE = 20_000
SOLVE_SAMPLE = 800  # the grade is solved on a mean: a few thousand pixels pin it to < 0.1 L*
_REF_MIRED = 1e6 / 5500.0
_Y = xyz_from_rgb[1]  # luminance weights of linear sRGB (library constant, not hand-typed)

# MediaPipe face-mesh contours (indices into the 478-point refined mesh).
FACE_OVAL = (10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377, 152, 148,
             176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109)
EYE_AND_BROW = (
    (7, 33, 133, 144, 145, 153, 154, 155, 157, 158, 159, 160, 161, 163, 173, 246, 46, 52, 53, 55, 63, 65, 66, 70, 105, 107),
    (249, 263, 362, 373, 374, 380, 381, 382, 384, 385, 386, 387, 388, 390, 398, 466, 276, 282, 283, 285, 293, 295,
     296, 300, 334, 336),
)
LIPS = (0, 13, 14, 17, 37, 39, 40, 61, 78, 80, 81, 82, 84, 87, 88, 91, 95, 146, 178, 181, 185, 191, 267, 269, 270,
        291, 308, 310, 311, 312, 314, 317, 318, 321, 324, 375, 402, 405, 409, 415)

_LIN = np.where(np.arange(256) / 255.0 <= 0.04045, np.arange(256) / 255.0 / 12.92,
                ((np.arange(256) / 255.0 + 0.055) / 1.055) ** 2.4)


def _encode(lin: np.ndarray) -> np.ndarray:
    lin = np.clip(lin, 0.0, 1.0)
    return np.where(lin <= 0.0031308, lin * 12.92, 1.055 * np.power(lin, 1 / 2.4) - 0.055)


def skin_mask(size: tuple[int, int], mesh: np.ndarray | None, box: tuple[float, float, float, float] | None) -> np.ndarray:
    """uint8 mask of face skin in an image of ``size`` (w, h): the face oval less eyes, brows and lips.

    ``mesh`` / ``box`` are in that image's pixels. Without a mesh: an ellipse inside the detector box.
    """
    w, h = size
    mask = np.zeros((h, w), np.uint8)
    if mesh is not None:
        pts = mesh[:, :2]
        oval = pts[list(FACE_OVAL)]
        face_w = float(np.ptp(oval[:, 0]))
        # Shrink off the oval's rim (hair, background) and grow the holes (lashes, brow hair, lip line).
        k = max(3, int(face_w * 0.06)) | 1
        # Work in the face's bounding box only: the morphology is the costly part.
        x0, y0 = (max(0, int(v) - k) for v in oval.min(axis=0))
        x1, y1 = (int(v) + k + 1 for v in oval.max(axis=0))
        x1, y1 = min(w, x1), min(h, y1)
        if x1 - x0 < 2 or y1 - y0 < 2:
            return mask
        roi = np.zeros((y1 - y0, x1 - x0), np.uint8)
        off = np.array([x0, y0])
        cv2.fillPoly(roi, [np.round(oval - off).astype(np.int32)], 255)
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
        roi = cv2.erode(roi, kernel)
        holes = np.zeros_like(roi)
        for idx in (*EYE_AND_BROW, LIPS):
            cv2.fillConvexPoly(holes, cv2.convexHull(np.round(pts[list(idx)] - off).astype(np.int32)), 255)
        roi[cv2.dilate(holes, kernel) > 0] = 0
        mask[y0:y1, x0:x1] = roi
    elif box is not None:
        x, y, bw, bh = box
        cv2.ellipse(mask, (int(x + bw / 2), int(y + bh * 0.55)), (int(bw * 0.3), int(bh * 0.3)), 0, 0, 360, 255, -1)
    return mask


@dataclass
class FaceColour:
    cct: float | None
    l_star: float
    pixels: int
    sample: np.ndarray = field(repr=False)  # Nx3 uint8 skin pixels (trimmed) for solving


def measure(rgb: np.ndarray, mask: np.ndarray) -> FaceColour | None:
    """Mean CCT and L* of the skin pixels, ignoring the darkest and brightest 10% (shadow, beard, glare)."""
    px = rgb[mask > 0]
    if len(px) < MIN_SKIN_PIXELS:
        return None
    if len(px) > MAX_SAMPLE:
        px = px[np.linspace(0, len(px) - 1, MAX_SAMPLE).astype(np.int64)]
    L = _lab(px)[:, 0]
    lo, hi = np.percentile(L, (10, 90))
    keep = px[(L >= lo) & (L <= hi)]
    if len(keep) < MIN_SKIN_PIXELS // 2:
        keep = px
    return _stats(keep)


def _lab(px: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(px.reshape(-1, 1, 3).astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB).reshape(-1, 3)


def _stats(px: np.ndarray) -> FaceColour:
    lin = _LIN[px].mean(axis=0)  # mean in linear light: what the light actually adds up to
    return FaceColour(cct_mccamy(_encode(lin) * 255.0), float(_lab(px)[:, 0].mean()), len(px), px)


def skin_target_cct(white_balance_k: float) -> float:
    """The face CCT that a portrait white-balanced to ``white_balance_k`` shows (see SKIN_NEUTRAL_K)."""
    mired = 1e6 / SKIN_NEUTRAL_K + (1e6 / white_balance_k - 1e6 / D65_K)
    return 1e6 / mired


def white_rgb(kelvin: float) -> np.ndarray:
    """Linear sRGB of a Planckian white at ``kelvin`` (Kim et al. cubic fit of the locus), green = 1."""
    t = float(np.clip(kelvin, 1667.0, 25000.0))
    if t <= 4000:
        x = -0.2661239e9 / t**3 - 0.2343589e6 / t**2 + 0.8776956e3 / t + 0.179910
    else:
        x = -3.0258469e9 / t**3 + 2.1070379e6 / t**2 + 0.2226347e3 / t + 0.240390
    if t <= 2222:
        y = -1.1063814 * x**3 - 1.34811020 * x**2 + 2.18555832 * x - 0.20219683
    elif t <= 4000:
        y = -0.9549476 * x**3 - 1.37418593 * x**2 + 2.09137015 * x - 0.16748867
    else:
        y = 3.0817580 * x**3 - 5.87338670 * x**2 + 3.75112997 * x - 0.37001483
    xyz = np.array([x / y, 1.0, (1 - x - y) / y])
    rgb = rgb_from_xyz @ xyz
    return rgb / rgb[1]


@dataclass
class Grade:
    gains: np.ndarray  # linear-light per-channel gains
    gamma: float
    saturation: float
    mired_shift: float
    limited: list[str] = field(default_factory=list)  # which bounds were hit

    @classmethod
    def identity(cls, saturation: float = 1.0) -> "Grade":
        return cls(np.ones(3), 1.0, saturation, 0.0)

    def to_dict(self) -> dict[str, float]:
        return {"mired_shift": self.mired_shift, "gamma": self.gamma, "saturation": self.saturation,
                "gain_r": float(self.gains[0]), "gain_g": float(self.gains[1]), "gain_b": float(self.gains[2])}


def _gains(shift: float, sample_lin_mean: np.ndarray) -> np.ndarray:
    g = white_rgb(1e6 / (_REF_MIRED + shift)) / white_rgb(1e6 / _REF_MIRED)
    # Keep the face's luminance: white balance must not double as an exposure change.
    return g * float(_Y @ sample_lin_mean) / max(float(_Y @ (sample_lin_mean * g)), 1e-6)


def _l_star(y: np.ndarray) -> np.ndarray:
    """CIE L* of relative luminance ``y`` (CIE 1976 definition)."""
    e, k = 216 / 24389, 24389 / 27
    return np.where(y > e, 116 * np.cbrt(y) - 16, k * y)


def _y_of(l_star: np.ndarray) -> np.ndarray:
    e, k = 216 / 24389, 24389 / 27
    return np.where(l_star > k * e, ((l_star + 16) / 116) ** 3, l_star / k)


def grade_lut(grade: Grade) -> np.ndarray:
    """One 256-entry table per channel: white-balance gain in linear light, then the L* tone curve.

    The tone curve is exact for neutral colours (L* and the sRGB value are one-to-one there) and a
    close, hue-keeping approximation elsewhere; the solver simulates this very pipeline, so the face
    still lands on its targets. Tables cost nothing per pixel, unlike a full-frame Lab round trip.
    """
    out = np.empty((1, 256, 3), np.uint8)
    for c, g in enumerate(grade.gains):
        lin = np.clip(_LIN * g, 0.0, 1.0)
        if abs(grade.gamma - 1) > 1e-4:
            lin = _y_of(100.0 * (_l_star(lin) / 100.0) ** grade.gamma)
        out[0, :, c] = np.clip(np.round(_encode(lin) * 255.0), 0, 255).astype(np.uint8)
    return out


# Rec. 709 luma weights: saturation scales each pixel's distance from its own grey.
_LUMA = np.array([0.2126, 0.7152, 0.0722], np.float32)


def apply(rgb: np.ndarray, grade: Grade) -> np.ndarray:
    """Apply ``grade`` to a uint8 RGB image (any shape ending in 3)."""
    shape = rgb.shape
    img = np.ascontiguousarray(rgb.reshape(-1, 1, 3) if rgb.ndim != 3 else rgb)
    out = cv2.LUT(img, grade_lut(grade))
    if abs(grade.saturation - 1) > 1e-4:
        s = np.float32(grade.saturation)
        m = s * np.eye(3, dtype=np.float32) + (1 - s) * np.tile(_LUMA, (3, 1))
        out = cv2.transform(out, m)  # saturating uint8 arithmetic
    return out.reshape(shape)


def _bisect(fn, lo: float, hi: float, target: float, decreasing: bool, iters: int = 11) -> tuple[float, str | None]:
    """x in [lo, hi] with fn(x) == target for a monotone fn; the bound hit, if any."""
    f_lo, f_hi = fn(lo), fn(hi)
    if decreasing:
        if target >= f_lo:
            return lo, "low"
        if target <= f_hi:
            return hi, "high"
    else:
        if target <= f_lo:
            return lo, "low"
        if target >= f_hi:
            return hi, "high"
    for _ in range(iters):
        mid = (lo + hi) / 2
        if (fn(mid) > target) == decreasing:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2, None


def solve(face: FaceColour, target_k: float, target_l: float, saturation: float) -> Grade:
    """The bounded grade that takes the face sample to ``target_k`` (face CCT, see skin_target_cct) and
    ``target_l`` (bounded to MAX_L_SHIFT from where the face is) after ``saturation``."""
    px = face.sample
    if len(px) > SOLVE_SAMPLE:
        px = px[np.linspace(0, len(px) - 1, SOLVE_SAMPLE).astype(np.int64)]
    sample = px.reshape(-1, 1, 3)
    lin_mean = _LIN[px].mean(axis=0)
    grade = Grade.identity(saturation)
    limited: dict[str, str | None] = {}

    def finished(g: Grade) -> FaceColour:
        return _stats(apply(sample, g).reshape(-1, 3))

    def cct_at(shift: float) -> float:
        g = Grade(_gains(shift, lin_mean), grade.gamma, saturation, shift)
        c = finished(g).cct
        return c if c is not None and math.isfinite(c) else 1e5

    def l_at(gamma: float) -> float:
        return finished(Grade(grade.gains, gamma, saturation, grade.mired_shift)).l_star

    l_goal = float(np.clip(target_l, face.l_star - MAX_L_SHIFT, face.l_star + MAX_L_SHIFT))
    # Alternate: the exposure curve nudges chroma and the white balance nudges L*; two rounds settle both.
    for _ in range(2):
        shift, limited["white_balance"] = _bisect(cct_at, -MAX_MIRED_SHIFT, MAX_MIRED_SHIFT, target_k, decreasing=True)
        grade = Grade(_gains(shift, lin_mean), grade.gamma, saturation, shift)
        gamma, limited["exposure"] = _bisect(l_at, *GAMMA_RANGE, l_goal, decreasing=True)
        if l_goal != target_l:
            limited["exposure"] = "shift"
        grade = Grade(grade.gains, gamma, saturation, grade.mired_shift)
    grade.limited = [k for k, v in limited.items() if v]
    log.debug("grade: shift %.1f mired, gamma %.3f, limited %s", grade.mired_shift, grade.gamma, grade.limited)
    return grade
