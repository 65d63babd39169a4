"""Approved backgrounds and compositing: a refined soft person mask, edge colour decontamination.

The person mask comes from MediaPipe's selfie segmentation at 256 px, which is soft and coarse at
portrait size. It is refined with a guided filter (the photo is the guide, so the matte follows
real hair and shoulder edges), lightly feathered, and the edge pixels' colours are rebuilt from the
person side (``decontaminate``) so the old background does not show as a halo on the new one.
"""
from __future__ import annotations

import logging
import threading

import cv2
import numpy as np
from PIL import Image, ImageFilter, ImageOps

from ..presets.styleguide import GradientBackground, ImageBackground, SolidBackground

log = logging.getLogger(__name__)

GUIDE_SIDE = 600  # the guided filter runs at this long side (then the matte is upsampled): 6x cheaper
GUIDED_RADIUS = 0.012  # of the long side
GUIDED_EPS = 3e-4  # on a [0, 1] guide: edges with contrast above ~0.02 steer the matte
FEATHER_SIGMA = 1.0  # px at output size: no stair-stepped, hard cut-out edge
_ERODE_FOR_DELTA_E = 0.02  # of the long side: pixels this close to the person are not judged as background


def render(bg, size: tuple[int, int]) -> np.ndarray:
    """The background at ``size`` (w, h) as read-only uint8 RGB (cached: one per background and size)."""
    key = (bg.model_dump_json(), tuple(size))
    with _LOCK:
        hit = _CACHE.get(key)
    if hit is None:
        hit = _render(bg, tuple(size))
        with _LOCK:
            if len(_CACHE) >= 16:
                _CACHE.pop(next(iter(_CACHE)))
            _CACHE[key] = hit
    return hit


_CACHE: dict = {}
_LOCK = threading.Lock()


def _render(bg, size: tuple[int, int]) -> np.ndarray:
    w, h = size
    if isinstance(bg, SolidBackground):
        out = np.empty((h, w, 3), np.uint8)
        out[:] = bg.rgb
    elif isinstance(bg, GradientBackground):
        t = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None]
        rows = np.asarray(bg.top, np.float32) * (1 - t) + np.asarray(bg.bottom, np.float32) * t
        # 0.5 LSB of ordered dither keeps a slow sweep from banding after JPEG.
        dither = (np.indices((h, w)).sum(axis=0) % 2).astype(np.float32)[..., None] - 0.5
        out = np.clip(rows[:, None, :] + 0.5 + dither * 0.5, 0, 255).astype(np.uint8)
    elif isinstance(bg, ImageBackground):
        with Image.open(bg.path) as im:  # a shipped asset (validated inside assets/), not user input
            img = ImageOps.fit(ImageOps.exif_transpose(im).convert("RGB"), (w, h), Image.Resampling.LANCZOS)
        if bg.blur > 0:
            img = img.filter(ImageFilter.GaussianBlur(bg.blur * max(w, h) / 1024))
        out = np.asarray(img, np.uint8).copy()
    else:  # pragma: no cover - the schema allows only the three kinds
        raise ValueError(f"unknown background kind {bg.kind!r}")
    out.setflags(write=False)
    return out


def refine_mask(mask: np.ndarray, guide: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """Edge-aware matte (float32 HxW in [0, 1]) from a coarse soft ``mask`` at ``guide``'s size.

    ``valid`` (1 inside the photo, 0 on canvas added around it) forces the added canvas to background.
    """
    h, w = mask.shape
    f = min(1.0, GUIDE_SIDE / max(h, w))
    small = (max(1, round(w * f)), max(1, round(h * f)))
    g = cv2.resize(guide, small, interpolation=cv2.INTER_AREA) if f < 1 else guide
    m = cv2.resize(mask, small, interpolation=cv2.INTER_AREA) if f < 1 else mask
    radius = max(2, int(round(GUIDED_RADIUS * max(small))))
    alpha = cv2.ximgproc.guidedFilter(g.astype(np.float32) / 255.0, m.astype(np.float32), radius, GUIDED_EPS)
    # Steepen the transition a little: the segmenter's ramp is wider than a real hair edge.
    alpha = np.clip((alpha - 0.5) * 1.6 + 0.5, 0.0, 1.0)
    if f < 1:
        alpha = cv2.resize(alpha, (w, h), interpolation=cv2.INTER_LINEAR)
    alpha = cv2.GaussianBlur(alpha, (0, 0), FEATHER_SIGMA)
    if valid is not None:
        alpha *= valid
    return np.clip(alpha, 0.0, 1.0).astype(np.float32)


def _local_mean(small: np.ndarray, weight: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian mean of ``small`` (a 1/4-size float image) over the cells where ``weight`` (full size,
    0/1) is 1 throughout: only pure-background (or pure-person) cells feed the estimate."""
    sh, sw = small.shape[:2]
    wt = cv2.resize(weight, (sw, sh), interpolation=cv2.INTER_AREA)
    wt = (wt > 0.999).astype(np.float32)
    s = max(1.0, sigma / 4)
    num = cv2.GaussianBlur(small * wt[..., None], (0, 0), s)
    den = cv2.GaussianBlur(wt, (0, 0), s)
    return num / np.maximum(den, 1e-4)[..., None]


def decontaminate(rgb: np.ndarray, alpha: np.ndarray, sigma: float) -> np.ndarray:
    """``rgb`` (uint8, changed in place and returned) with the old background removed from edge pixels.

    In the edge band the observed colour is ``a F + (1 - a) B_old``. ``B_old`` is estimated from nearby
    clear background, ``F`` solved from it; where ``a`` is small that solve is noisy, so it is blended
    towards the nearby clear-person colour instead. Only the band's pixels are touched, and the local
    colour estimates are made at 1/4 size (they are smooth by construction).
    """
    ys, xs = np.nonzero((alpha > 0.02) & (alpha < 0.98))
    if not len(ys):
        return rgb
    h, w = alpha.shape
    small = cv2.resize(rgb, (max(1, w // 4), max(1, h // 4)), interpolation=cv2.INTER_AREA).astype(np.float32)
    b_small = _local_mean(small, (alpha < 0.05).astype(np.float32), sigma)
    f_small = _local_mean(small, (alpha > 0.95).astype(np.float32), sigma)
    sy = np.minimum(ys // 4, b_small.shape[0] - 1)
    sx = np.minimum(xs // 4, b_small.shape[1] - 1)
    b_old, f_near = b_small[sy, sx], f_small[sy, sx]
    obs = rgb[ys, xs].astype(np.float32)
    a = np.maximum(alpha[ys, xs], 0.05)[:, None]
    solved = np.clip((obs - (1.0 - a) * b_old) / a, 0.0, 255.0)
    trust = np.clip((a - 0.2) / 0.6, 0.0, 1.0)  # 0 below a=0.2, 1 above a=0.8
    rgb[ys, xs] = np.clip(trust * solved + (1.0 - trust) * f_near + 0.5, 0, 255).astype(np.uint8)
    return rgb


def composite(fg: np.ndarray, alpha: np.ndarray, background: np.ndarray) -> np.ndarray:
    """``alpha * fg + (1 - alpha) * background`` on uint8 images."""
    return cv2.blendLinear(fg, np.ascontiguousarray(background), alpha, np.float32(1.0) - alpha)


def background_delta_e(out: np.ndarray, reference: np.ndarray, alpha: np.ndarray) -> float | None:
    """Mean CIE76 ΔE between ``out`` and the approved ``reference`` where there is clearly no person."""
    h, w = alpha.shape
    k = max(3, int(_ERODE_FOR_DELTA_E * max(h, w) / 4)) | 1
    # Every 4th pixel: the mean needs no more, and the morphology is 16x cheaper.
    person = cv2.dilate((alpha[::4, ::4] > 0.02).astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    sel = person == 0
    if sel.sum() < 100:
        return None
    a = out[::4, ::4][sel].reshape(-1, 1, 3).astype(np.float32) / 255.0
    b = reference[::4, ::4][sel].reshape(-1, 1, 3).astype(np.float32) / 255.0
    d = cv2.cvtColor(a, cv2.COLOR_RGB2LAB) - cv2.cvtColor(b, cv2.COLOR_RGB2LAB)
    return float(np.sqrt((d ** 2).sum(axis=-1)).mean())
