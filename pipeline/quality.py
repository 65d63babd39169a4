"""Image-quality measurements on the face region.

Pure functions over numpy arrays, shared by the capture gate and (later) the review step.
Every measurement is taken on a face crop resampled to a fixed size, so the numbers mean the
same thing for a 300 px selfie and a 4000 px studio shot.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .faces import FaceInfo

FACE_CANON = 192  # side of the normalised face crop, in pixels


@dataclass
class FaceQuality:
    sharpness: float  # variance of the Laplacian on the normalised face crop
    texture: float  # fine-scale skin detail (std of a small band-pass) on cheek patches
    luminance: float  # mean L* (0-100) of the face centre
    clipped: float  # fraction of face-centre pixels blown out (every channel at or above 248)
    shadow: float  # |L* left half - L* right half| of the face
    cast: float  # chroma of the whole image's mean a*/b* (grey-world), in Lab units
    dark: float  # fraction of face-centre pixels with L* below 12

    def to_dict(self) -> dict:
        return {k: round(float(v), 3) for k, v in self.__dict__.items()}


def face_crop(rgb: np.ndarray, face: FaceInfo, margin: float = 0.0) -> np.ndarray:
    """The detector box (optionally widened), clipped to the image, resampled to FACE_CANON."""
    x, y, w, h = face.box
    x0 = int(max(0, x - margin * w)); y0 = int(max(0, y - margin * h))
    x1 = int(min(rgb.shape[1], x + w * (1 + margin))); y1 = int(min(rgb.shape[0], y + h * (1 + margin)))
    crop = rgb[y0:max(y1, y0 + 2), x0:max(x1, x0 + 2)]
    interp = cv2.INTER_AREA if crop.shape[0] > FACE_CANON else cv2.INTER_CUBIC
    return cv2.resize(crop, (FACE_CANON, FACE_CANON), interpolation=interp)


# Face-mesh points at the centre of flat skin: cheeks (205/425, 50/280, 187/411) and forehead.
SKIN_POINTS = (205, 425, 50, 280, 187, 411, 151, 9, 108, 337)
TEXTURE_FACE_WIDTH = 384  # pores and skin grain survive at this scale; at 192 px they do not
TEXTURE_SIGMA = 2.5  # band-pass: detail finer than ~2.5 px at the 384 px face scale


def _skin_points(face: FaceInfo) -> list[tuple[float, float]]:
    if face.mesh is not None:
        return [tuple(face.mesh[i, :2]) for i in SKIN_POINTS]
    # Without a mesh: the midpoint of each eye and its mouth corner, roughly mid-cheek.
    lm = face.landmarks
    return [((lm[e][0] + lm[m][0]) / 2, (lm[e][1] + lm[m][1]) / 2)
            for e, m in (("left_eye", "mouth_left"), ("right_eye", "mouth_right"))]


def texture_energy(rgb: np.ndarray, face: FaceInfo) -> float:
    """Fine skin detail on small patches of flat skin, at a scale tied to the face size.

    Beauty filters and heavy smoothing remove this band while leaving edges (eyes, jaw) sharp,
    so it separates 'smoothed' from 'blurred'. The spread is robust (1.4826 x MAD) so that a
    stray edge or highlight in a patch does not dominate it. Calibrated on the 33 real photos in
    ../shared/testdata/faces against the set median: unfiltered 0.36-2.8 (10th percentile 0.56),
    after three strong bilateral passes 0.11-0.42 (median 0.25).
    """
    scale = TEXTURE_FACE_WIDTH / max(face.box[2], 1.0)
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    half = max(face.interocular * 0.16, 2.0)
    values = []
    for cx, cy in _skin_points(face):
        x0, y0 = int(max(0, cx - half)), int(max(0, cy - half))
        x1, y1 = int(min(gray.shape[1], cx + half)), int(min(gray.shape[0], cy + half))
        if x1 - x0 < 4 or y1 - y0 < 4:
            continue
        patch = gray[y0:y1, x0:x1].astype(np.float32)
        side = max(8, int(round((x1 - x0) * scale)))
        patch = cv2.resize(patch, (side, side), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
        band = patch - cv2.GaussianBlur(patch, (0, 0), TEXTURE_SIGMA)
        values.append(1.4826 * float(np.median(np.abs(band - np.median(band)))))
    return float(np.median(values)) if values else 0.0


def measure_face(rgb: np.ndarray, face: FaceInfo) -> FaceQuality:
    crop = face_crop(rgb, face)
    gray = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)
    sharp = float(cv2.Laplacian(gray, cv2.CV_32F).var())
    # The face centre (inner 60%) avoids hair and background at the box edges.
    c0, c1 = int(FACE_CANON * 0.2), int(FACE_CANON * 0.8)
    centre = crop[c0:c1, c0:c1]
    lab = cv2.cvtColor(centre, cv2.COLOR_RGB2LAB).astype(np.float32)
    lum = lab[..., 0] * (100.0 / 255.0)
    mid = lum.shape[1] // 2
    small = cv2.resize(rgb, (64, 64), interpolation=cv2.INTER_AREA)
    lab_all = cv2.cvtColor(small, cv2.COLOR_RGB2LAB).astype(np.float32)
    a, b = lab_all[..., 1].mean() - 128.0, lab_all[..., 2].mean() - 128.0
    return FaceQuality(
        sharpness=sharp,
        texture=texture_energy(rgb, face),
        luminance=float(lum.mean()),
        clipped=float((centre.min(axis=2) >= 248).mean()),
        shadow=float(abs(lum[:, :mid].mean() - lum[:, mid:].mean())),
        cast=float(np.hypot(a, b)),
        dark=float((lum < 12).mean()),
    )


def dhash(rgb: np.ndarray, size: int = 8) -> int:
    """64-bit difference hash of the whole image: near-identical frames differ by a few bits."""
    gray = cv2.cvtColor(cv2.resize(rgb, (size + 1, size), interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2GRAY)
    bits = (gray[:, 1:] > gray[:, :-1]).ravel()
    return int(sum(1 << i for i, bit in enumerate(bits) if bit))


def hamming(a: int, b: int) -> int:
    return bin(a ^ b).count("1")
