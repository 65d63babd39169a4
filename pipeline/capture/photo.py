"""Checks that need only one photo."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from ..faces import FaceAnalyzer, FaceInfo
from ..intake import IntakeError, IntakeLimits, open_photo
from ..quality import FaceQuality, dhash, measure_face
from .report import ADVICE, DEFAULT_THRESHOLDS, PREVIEW_SIDE, REJECT, WARN, _RANK, CaptureThresholds, PhotoCheck, Reason

log = logging.getLogger(__name__)


def check_photo(source: str | Path | bytes, name: str, analyzer: FaceAnalyzer,
                t: CaptureThresholds = DEFAULT_THRESHOLDS, limits: IntakeLimits = IntakeLimits()) -> PhotoCheck:
    """Checks that need only this photo. Set-relative checks come later in :func:`check_set`."""
    check = PhotoCheck(file=name)
    try:
        photo = open_photo(source, name=name, limits=limits)
    except IntakeError as exc:
        check.reasons.append(Reason(exc.code, REJECT, exc.message + " " + ADVICE[exc.code], exc.value, exc.threshold))
        return check
    except Exception as exc:  # one broken photo must never sink the batch
        # Only the error type: messages and tracebacks can carry file names and pixel data.
        log.error("unexpected %s while decoding one photo", type(exc).__name__)
        check.add("unreadable", REJECT)
        return check
    try:
        _check_faces(check, photo, analyzer, t)
    except Exception as exc:
        log.error("unexpected %s while analysing one photo", type(exc).__name__)
        check.add("no_face", REJECT, detail="(The analysis failed on this file.)")
    return check


def _check_faces(check: PhotoCheck, photo, analyzer: FaceAnalyzer, t: CaptureThresholds) -> None:
    check.sha256 = photo.sha256
    check.preview = _small(photo.rgb, PREVIEW_SIDE)
    w, h = photo.original_size
    check.metrics["size"] = [w, h]
    check.hash64 = dhash(photo.rgb)
    if min(w, h) < t.min_side_reject:
        check.add("low_resolution", REJECT, min(w, h), t.min_side_reject, f"The photo is only {w}x{h} pixels.")
    analysis = analyzer.analyze(photo.rgb)
    face = analysis.primary
    check.metrics["faces"] = len(analysis.faces)
    if face is None:
        check.add("no_face", REJECT)
        return
    check.face = face
    _check_other_faces(check, analysis.faces, t)

    ah, aw = photo.rgb.shape[:2]
    share = max(face.box[2] / aw, face.box[3] / ah)
    face_px = face.box[2] / photo.scale
    check.metrics.update(face_share=round(share, 3), face_px=round(face_px), yaw=round(face.yaw, 1),
                         roll=round(face.roll, 1), pitch=None if face.pitch is None else round(face.pitch, 1))
    _grade(check, "face_too_small", share, t.face_share_reject, t.face_share_warn, lower_is_bad=True,
           detail=f"Your face fills {share:.0%} of the frame.")
    _grade(check, "low_resolution", face_px, t.face_px_reject, t.face_px_warn, lower_is_bad=True,
           detail=f"Your face is {face_px:.0f} pixels wide.")

    q: FaceQuality = measure_face(photo.rgb, face)
    check.texture = q.texture
    check.metrics.update(q.to_dict())
    _grade(check, "blurry", q.sharpness, t.blur_reject, t.blur_warn, lower_is_bad=True)
    _grade(check, "underexposed", q.luminance, t.dark_reject, t.dark_warn, lower_is_bad=True)
    # Brightness and blown-out highlights are graded apart; the photo keeps the worse of the two.
    bright, clipped = PhotoCheck(check.file), PhotoCheck(check.file)
    _grade(bright, "overexposed", q.luminance, t.bright_reject, t.bright_warn, lower_is_bad=False)
    _grade(clipped, "overexposed", q.clipped, t.clipped_reject, t.clipped_warn, lower_is_bad=False,
           detail=f"{q.clipped:.0%} of the face is blown out to white.")
    worse = max((bright, clipped), key=lambda c: _RANK[c.verdict])
    check.reasons.extend(worse.reasons)
    if q.shadow > t.shadow_warn:
        check.add("harsh_shadow", WARN, q.shadow, t.shadow_warn)
    if q.cast > t.cast_warn:
        check.add("color_cast", WARN, q.cast, t.cast_warn)
    _check_pose(check, face, t)


def _check_other_faces(check: PhotoCheck, faces: Sequence[FaceInfo], t: CaptureThresholds) -> None:
    if len(faces) < 2:
        return
    ratio = faces[1].box[2] / faces[0].box[2]
    if ratio >= t.second_face_reject:
        check.add("multiple_faces", REJECT, ratio, t.second_face_reject, f"{len(faces)} faces were found.")
    elif ratio >= t.second_face_warn:
        check.add("multiple_faces", WARN, ratio, t.second_face_reject,
                  "A smaller face is in the background; it is best to have no one else in view.")


def _check_pose(check: PhotoCheck, face: FaceInfo, t: CaptureThresholds) -> None:
    angles = [("yaw", face.yaw, t.yaw_warn, t.yaw_reject, "turned"),
              ("roll", face.roll, t.roll_warn, t.roll_reject, "tilted sideways"),
              ("pitch", face.pitch, t.pitch_warn, t.pitch_reject, "tilted up or down")]
    worst = None
    for name, value, warn, reject, words in angles:
        if value is None:
            continue
        severity = REJECT if abs(value) > reject else WARN if abs(value) > warn else None
        if severity and (worst is None or _RANK[severity] > _RANK[worst[0]]):
            worst = (severity, abs(value), reject if severity == REJECT else warn, f"The head is {words} by {abs(value):.0f} degrees.")
    if worst:
        check.add("extreme_pose", worst[0], worst[1], worst[2], worst[3])
    check.pose = pose_bin(face, t)


def _small(rgb: np.ndarray, side: int) -> np.ndarray:
    h, w = rgb.shape[:2]
    f = side / max(h, w)
    if f >= 1:
        return rgb.copy()
    return cv2.resize(rgb, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)


def pose_bin(face: FaceInfo, t: CaptureThresholds = DEFAULT_THRESHOLDS) -> str:
    """The dominant pose, named from the subject's own point of view."""
    yaw, pitch = face.yaw, face.pitch or 0.0
    if max(abs(yaw), abs(pitch)) < t.pose_bin_deg:
        return "frontal"
    if abs(yaw) >= abs(pitch):
        # Positive yaw faces the image right, which is the subject's own left.
        return "turned_left" if yaw > 0 else "turned_right"
    return "chin_up" if pitch > 0 else "chin_down"


def _grade(check: PhotoCheck, code: str, value: float, reject: float, warn: float, lower_is_bad: bool, detail: str = "") -> None:
    bad = (lambda v, lim: v < lim) if lower_is_bad else (lambda v, lim: v > lim)
    if bad(value, reject):
        check.add(code, REJECT, value, reject, detail)
    elif bad(value, warn):
        check.add(code, WARN, value, warn, detail)
