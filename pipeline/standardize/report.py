"""Report types for standardisation: reasons with stable codes, per-photo results, thresholds."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from PIL import Image

OK, WARN, FAIL = "ok", "warn", "fail"
_RANK = {OK: 0, WARN: 1, FAIL: 2}


@dataclass(frozen=True)
class StandardizeThresholds:
    """Every threshold of the standardisation step, in one place."""

    # Output pixels per original pixel. Up to 2x a portrait still holds up at web sizes; past 4x
    # it is visibly soft (a messaging-app copy or a screenshot).
    upscale_warn: float = 2.0
    upscale_fail: float = 4.0
    # Another face this wide relative to the main one is a second subject (fail); smaller ones warn.
    second_face_fail: float = 0.5
    second_face_warn: float = 0.25
    # Head enlarged (about the eyes) because the photo ends under the chin/shoulders.
    zoom_warn: float = 1.03  # the same tolerance as a team head-size outlier
    zoom_fail: float = 1.25
    # Share of an edge (within the output) where the person touches the photo's edge and the
    # canvas had to be extended: a visible cut through hair or shoulders.
    edge_cut_share: float = 0.04
    # Mean CIE76 ΔE between the output background and the approved one (outside the person).
    background_delta_e_warn: float = 3.0
    # |yaw| in degrees: a strongly turned head does not match a team of frontal portraits.
    yaw_warn: float = 30.0
    # Team consistency: deviation from the team median that names a member as an outlier.
    eye_line_dev: float = 0.01  # fraction of the frame height
    head_height_dev: float = 0.03  # relative to the median head height
    cct_dev_k: float = 400.0
    l_dev: float = 5.0


DEFAULT_THRESHOLDS = StandardizeThresholds()

MESSAGES = {
    "unreadable": "The file could not be read as a photo. Re-export it as JPEG or HEIC.",
    "too_large": "The file is too big to process. Export it at a normal size.",
    "no_face": "No face was found. Use a photo where the face is clearly visible.",
    "multiple_faces": "More than one person is in the photo. Use a photo of this member alone.",
    "low_resolution": "The photo has too few pixels for this crop, so it had to be enlarged. Use the original from the camera.",
    "crop_padded_below": ("The photo ends too close under the chin for the standard crop. Rather than showing a cut "
                          "below the body, the head was enlarged; use a photo that shows the shoulders."),
    "person_cut_at_edge": "The photo cuts through the hair or shoulders where the canvas had to be extended; a straight edge may show.",
    "background_mismatch": "The new background differs from the approved colour more than expected.",
    "colour_limited": "The colour correction needed was larger than allowed; the light in this photo is unusual.",
    "extreme_pose": "The head is turned strongly; the portrait will not match the rest of the team.",
    "processing_error": "The photo could not be processed.",
}


@dataclass
class Reason:
    code: str
    severity: str  # "warn" or "fail"
    message: str
    value: float | None = None
    threshold: float | None = None

    def to_dict(self) -> dict:
        d: dict[str, Any] = {"code": self.code, "severity": self.severity, "message": self.message}
        if self.value is not None:
            d["value"] = round(float(self.value), 4)
        if self.threshold is not None:
            d["threshold"] = round(float(self.threshold), 4)
        return d


@dataclass
class Measurements:
    """Measured on the standardised portrait (fractions of the output height from the top)."""

    eye_line: float | None = None
    head_height: float | None = None  # 2 x eyes-to-chin (landmark head size), fraction of height
    eye_centre: float | None = None  # fraction of the width
    measured_by: str = "placement"  # "analyzer": re-detected on the output; "placement": from the geometry
    background_delta_e: float | None = None
    face_cct_before: float | None = None
    face_cct_after: float | None = None
    face_l_before: float | None = None
    face_l_after: float | None = None
    face_cct_target: float | None = None  # the face CCT the guide's white balance asks for
    face_l_target: float | None = None
    upscale: float | None = None  # output pixels per original pixel
    zoom: float = 1.0  # head size achieved / asked for (> 1 when the photo ended too soon below)
    padded: dict[str, int] = field(default_factory=dict)  # canvas px added per side
    corrections: dict[str, float] = field(default_factory=dict)  # mired shift, gamma, saturation

    def to_dict(self) -> dict:
        out: dict[str, Any] = {}
        for k, v in self.__dict__.items():
            out[k] = round(v, 4) if isinstance(v, float) else v
        out["corrections"] = {k: round(float(v), 4) for k, v in self.corrections.items()}
        return out


@dataclass
class PortraitResult:
    """One member photo, standardised (or failed, with reasons; never an exception)."""

    file: str
    member_id: str
    person: dict[str, str]
    guide: str  # name@version
    background: str
    size: tuple[int, int]
    reasons: list[Reason] = field(default_factory=list)
    metrics: Measurements = field(default_factory=Measurements)
    image: Image.Image | None = field(default=None, repr=False)  # sRGB RGB; dropped once written
    output: str | None = None  # master file written by the batch
    thumbnail: bytes | None = field(default=None, repr=False)  # small JPEG for the contact sheet
    consistency: dict = field(default_factory=dict)  # deviation from the team median (filled by the team report)

    @property
    def verdict(self) -> str:
        sev = [FAIL if r.severity == FAIL else WARN for r in self.reasons]
        return max(sev, key=_RANK.__getitem__, default=OK)

    @property
    def ok(self) -> bool:
        return self.verdict == OK

    def has(self, code: str) -> bool:
        return any(r.code == code for r in self.reasons)

    def add(self, code: str, severity: str, value=None, threshold=None, detail: str = "") -> None:
        message = MESSAGES[code] + (f" {detail}" if detail else "")
        self.reasons.append(Reason(code, severity, message, value, threshold))

    def to_dict(self) -> dict:
        return {
            "file": self.file, "member_id": self.member_id, "person": dict(self.person), "guide": self.guide,
            "background": self.background, "size": list(self.size), "verdict": self.verdict,
            "reasons": [r.to_dict() for r in self.reasons], "metrics": self.metrics.to_dict(),
            "output": self.output, "consistency": dict(self.consistency),
        }
