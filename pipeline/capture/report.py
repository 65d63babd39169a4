"""Capture thresholds (as data), plain-language advice, and the report types."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..faces import FaceInfo

ACCEPT, WARN, REJECT = "accept", "warn", "reject"
_RANK = {ACCEPT: 0, WARN: 1, REJECT: 2}
PREVIEW_SIDE = 320
POSE_BINS = ("frontal", "turned_left", "turned_right", "chin_up", "chin_down")


@dataclass(frozen=True)
class CaptureThresholds:
    """Every capture threshold, in one place. Values were set on the real photos in
    ../shared/testdata/faces (7 people, 33 photos) and on degraded copies of them."""

    # Face height (or width) as a share of the frame. Real selfies measured 0.27-0.6; below 0.10
    # the face is a speck a LoRA cannot learn from.
    face_share_reject: float = 0.10
    face_share_warn: float = 0.18
    # Face width in ORIGINAL pixels: a 1024 px training crop needs real detail in the face.
    face_px_reject: float = 90
    face_px_warn: float = 180
    min_side_reject: int = 256
    # Another face at least this wide relative to the main one is a second subject; smaller
    # ones are background people (warn only), tinier ones are ignored.
    second_face_reject: float = 0.5
    second_face_warn: float = 0.2
    # Variance of the Laplacian on a 192 px face crop. Sharp real photos: 77-970; a mild
    # defocus (sigma = face/60) falls to 5-10.
    blur_reject: float = 25.0
    blur_warn: float = 60.0
    # Mean L* (0-100) of the face centre. Real photos: 43-74.
    dark_reject: float = 25.0
    dark_warn: float = 35.0
    bright_reject: float = 88.0
    bright_warn: float = 80.0
    # Share of blown-out face pixels (all channels >= 248): glare, flash, window light.
    clipped_reject: float = 0.25
    clipped_warn: float = 0.10
    # Left/right L* difference across the face; real photos reached 26 under side light.
    shadow_warn: float = 28.0
    # Grey-world chroma of the whole photo; warm indoor light measured up to 21.
    cast_warn: float = 25.0
    # Degrees. Slight turns help training; profiles and strong tilts do not.
    yaw_warn: float = 30.0
    yaw_reject: float = 45.0
    pitch_warn: float = 20.0
    pitch_reject: float = 32.0
    roll_warn: float = 20.0
    roll_reject: float = 32.0
    # Pose bins for variety: a turn or tilt beyond this counts as a distinct pose.
    pose_bin_deg: float = 10.0
    # Skin texture against the set median (see quality.texture_energy). Unfiltered real photos
    # measured >= 0.36 (a soft one) and mostly >= 0.56; strongly smoothed ones <= 0.42, median 0.25.
    texture_ratio_warn: float = 0.45
    texture_ratio_reject: float = 0.25
    # SFace cosine. Same person across years measured >= 0.63 here (>= 0.49 on deepface's full
    # set); different people <= 0.44. A single link at 0.50 joins a person's photos without
    # chaining strangers; a mean below 0.30 to the rest flags a weak member.
    identity_link: float = 0.50
    identity_weak: float = 0.30
    # A second cluster at least half the size of the main one makes the whole set ambiguous.
    mixed_share: float = 0.5
    # Near-duplicates: whole-image dHash within 6 of 64 bits and the same face.
    duplicate_hash_bits: int = 6
    duplicate_identity: float = 0.85
    # Set size.
    min_photos: int = 6
    recommended_photos: int = 10
    select_min: int = 10
    select_max: int = 20
    min_pose_bins: int = 3


DEFAULT_THRESHOLDS = CaptureThresholds()

ADVICE = {
    "unreadable": "This file could not be read as a photo. Re-export it as JPEG or HEIC.",
    "too_large": "This file is too big to process. Export it at a normal size from your phone's gallery.",
    "no_face": "No face was found. Use a photo where your face is clearly visible and facing the camera.",
    "multiple_faces": "Another person is in the photo. Crop them out or use a photo of you alone.",
    "face_too_small": "Your face is too small in the frame. Hold the camera closer, about arm's length.",
    "low_resolution": "The photo has too few pixels on your face. Use the original from your camera, not a screenshot or a messaging-app copy.",
    "blurry": "The face is not sharp. Hold still, tap to focus on your face and use good light.",
    "underexposed": "The face is too dark. Face a window or a lamp.",
    "overexposed": "The face is washed out. Avoid direct sun or flash on your face.",
    "harsh_shadow": "One side of the face is in deep shadow. Turn towards the light so it falls evenly.",
    "color_cast": "The colours are strongly tinted. Use daylight and avoid coloured lamps or filters.",
    "extreme_pose": "The head is turned or tilted too far. Face the camera or turn only slightly.",
    "heavy_filter": "The skin looks much smoother than in your other photos: a filter, beauty mode or heavy compression. Use an unfiltered original.",
    "duplicate": "This is nearly the same photo as another one in the set. Vary pose, expression or place.",
    "identity_outlier": "This looks like a different person from the rest of the set. Remove it.",
    "too_few_photos": "There are not enough usable photos to train on.",
    "low_pose_variety": "The set lacks variety in head pose.",
    "mixed_identities": "The set holds two or more different people in similar numbers.",
}


@dataclass
class Reason:
    code: str
    severity: str  # "warn" or "reject"
    message: str
    value: float | None = None
    threshold: float | None = None

    def to_dict(self) -> dict:
        d = {"code": self.code, "severity": self.severity, "message": self.message}
        if self.value is not None:
            d["value"] = round(float(self.value), 3)
        if self.threshold is not None:
            d["threshold"] = round(float(self.threshold), 3)
        return d


@dataclass
class PhotoCheck:
    file: str
    reasons: list[Reason] = field(default_factory=list)
    metrics: dict = field(default_factory=dict)
    sha256: str | None = None
    pose: str | None = None
    score: float = 0.0
    selected: bool = False
    rank: int | None = None
    face: FaceInfo | None = field(default=None, repr=False)
    texture: float | None = field(default=None, repr=False)
    hash64: int | None = field(default=None, repr=False)
    preview: np.ndarray | None = field(default=None, repr=False)  # small RGB copy for the UI

    @property
    def verdict(self) -> str:
        return max((r.severity for r in self.reasons), key=_RANK.__getitem__, default=ACCEPT)

    @property
    def usable(self) -> bool:
        return self.verdict != REJECT and not self.has("duplicate")

    def has(self, code: str) -> bool:
        return any(r.code == code for r in self.reasons)

    def add(self, code: str, severity: str, value=None, threshold=None, detail: str = "") -> None:
        message = ADVICE[code] + (f" {detail}" if detail else "")
        self.reasons.append(Reason(code, severity, message, value, threshold))

    def to_dict(self) -> dict:
        return {
            "file": self.file, "verdict": self.verdict, "reasons": [r.to_dict() for r in self.reasons],
            "selected": self.selected, "rank": self.rank, "score": round(self.score, 3), "pose": self.pose,
            "sha256": self.sha256, "metrics": self.metrics,
        }


@dataclass
class SetCheck:
    verdict: str
    reasons: list[Reason]
    selected: list[str]
    pose_coverage: dict[str, int]
    advice: list[str]
    usable: int
    total: int

    def to_dict(self) -> dict:
        return {
            "verdict": self.verdict, "reasons": [r.to_dict() for r in self.reasons], "selected": self.selected,
            "pose_coverage": self.pose_coverage, "advice": self.advice, "usable": self.usable, "total": self.total,
        }


@dataclass
class CaptureReport:
    photos: list[PhotoCheck]
    set: SetCheck

    def to_dict(self) -> dict:
        return {"photos": [p.to_dict() for p in self.photos], "set": self.set.to_dict()}

    @property
    def exit_code(self) -> int:
        """0 when every photo and the set are accepted, 1 otherwise (see ARCHITECTURE.md)."""
        ok = self.set.verdict == ACCEPT and all(p.verdict == ACCEPT for p in self.photos)
        return 0 if ok else 1
