"""The capture-set gate: per-photo checks, set-level checks, selection and coaching advice."""
from __future__ import annotations

import functools
import logging
import math
import statistics
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import cv2
import numpy as np
from tqdm.auto import tqdm

from .faces import FaceAnalyzer, FaceInfo, cosine
from .intake import IntakeError, IntakeLimits, open_photo
from .quality import FaceQuality, dhash, hamming, measure_face

log = logging.getLogger(__name__)

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


@functools.lru_cache(maxsize=1)
def default_analyzer() -> FaceAnalyzer:
    """One analyzer per process: it holds models only, never user data."""
    return FaceAnalyzer()


def warm_up() -> None:
    """Load the face models now, so that the first user does not wait for them."""
    default_analyzer().analyze(np.zeros((64, 64, 3), np.uint8))


# --------------------------------------------------------------------------- per photo

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


# --------------------------------------------------------------------------- whole set

def check_set(photos: list[PhotoCheck], t: CaptureThresholds = DEFAULT_THRESHOLDS) -> SetCheck:
    """Set-relative checks (identity, filters, duplicates), then selection and advice.

    Adds per-photo reasons in place, so call it once, after every :func:`check_photo`.
    """
    faced = [p for p in photos if p.face is not None and p.verdict != REJECT]
    set_reasons: list[Reason] = []
    _check_identity(faced, set_reasons, t)
    _check_texture(faced, t)
    _check_duplicates([p for p in faced if p.verdict != REJECT], t)
    usable = [p for p in photos if p.usable]
    for p in usable:
        p.score = _quality_score(p, t)
    selected = _select(usable, t)
    for rank, p in enumerate(selected, 1):
        p.selected, p.rank = True, rank
    coverage = {b: sum(1 for p in usable if p.pose == b) for b in POSE_BINS}

    if len(usable) < t.min_photos:
        set_reasons.append(Reason("too_few_photos", REJECT,
                                  f"Only {len(usable)} usable photos; at least {t.min_photos} are needed and "
                                  f"{t.recommended_photos}-20 are best.", len(usable), t.min_photos))
    elif len(usable) < t.recommended_photos:
        set_reasons.append(Reason("too_few_photos", WARN,
                                  f"{len(usable)} usable photos; {t.recommended_photos}-20 give a more faithful likeness.",
                                  len(usable), t.recommended_photos))
    covered = sum(1 for n in coverage.values() if n)
    if usable and covered < t.min_pose_bins:
        set_reasons.append(Reason("low_pose_variety", WARN,
                                  f"{ADVICE['low_pose_variety']} Only {covered} of {len(POSE_BINS)} poses are covered.",
                                  covered, t.min_pose_bins))
    verdict = max((r.severity for r in set_reasons), key=_RANK.__getitem__, default=ACCEPT)
    return SetCheck(
        verdict=verdict, reasons=set_reasons, selected=[p.file for p in selected], pose_coverage=coverage,
        advice=_advice(photos, usable, coverage, t), usable=len(usable), total=len(photos),
    )


def _check_identity(faced: list[PhotoCheck], set_reasons: list[Reason], t: CaptureThresholds) -> None:
    """Cluster by single linkage at ``identity_link``; the largest cluster is the subject."""
    n = len(faced)
    if n < 2:
        return
    emb = np.stack([p.face.embedding for p in faced])
    sim = emb @ emb.T
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(n):
        for j in range(i + 1, n):
            if sim[i, j] >= t.identity_link:
                parent[find(i)] = find(j)
    clusters: dict[int, list[int]] = {}
    for i in range(n):
        clusters.setdefault(find(i), []).append(i)
    ordered = sorted(clusters.values(), key=len, reverse=True)
    main = ordered[0]
    # A second person in comparable numbers means the set itself is mixed, not one stray photo.
    if len(ordered) > 1 and len(ordered[1]) >= max(2, t.mixed_share * len(main)):
        set_reasons.append(Reason("mixed_identities", REJECT,
                                  f"{ADVICE['mixed_identities']} Upload photos of one person only.",
                                  len(ordered[1]), None))
    members = set(main)
    for i, p in enumerate(faced):
        others = [j for j in main if j != i]
        mean_sim = float(np.mean(sim[i, others])) if others else 1.0
        p.metrics["identity_similarity"] = round(mean_sim, 3)
        if i not in members:
            p.add("identity_outlier", REJECT, mean_sim, t.identity_link,
                  f"Its similarity to the rest of the set is {mean_sim:.2f}.")
        elif len(main) > 2 and mean_sim < t.identity_weak:
            p.add("identity_outlier", WARN, mean_sim, t.identity_weak,
                  "It only loosely matches the rest of the set; check that it is you.")


def _check_texture(faced: list[PhotoCheck], t: CaptureThresholds) -> None:
    """Skin texture against the rest of the set: a filtered photo has far less than its siblings."""
    textures = [p.texture for p in faced if p.texture]
    if len(textures) < 3:
        return
    for p in faced:
        if not p.texture or p.has("blurry"):
            continue  # blur already explains missing texture
        others = [p2.texture for p2 in faced if p2 is not p and p2.texture]
        ratio = p.texture / max(statistics.median(others), 1e-6)
        p.metrics["texture_ratio"] = round(ratio, 3)
        if ratio < t.texture_ratio_reject:
            p.add("heavy_filter", REJECT, ratio, t.texture_ratio_reject,
                  f"Its skin detail is {ratio:.0%} of your other photos'.")
        elif ratio < t.texture_ratio_warn:
            p.add("heavy_filter", WARN, ratio, t.texture_ratio_warn,
                  f"Its skin detail is {ratio:.0%} of your other photos'.")


def _check_duplicates(candidates: list[PhotoCheck], t: CaptureThresholds) -> None:
    # Better photos claim their place first; a later near-copy points back to the kept one.
    ordered = sorted(candidates, key=lambda p: -_quality_score(p, t))
    kept: list[PhotoCheck] = []
    for p in ordered:
        twin = next((k for k in kept if k.sha256 == p.sha256 or (
            hamming(k.hash64, p.hash64) <= t.duplicate_hash_bits
            and cosine(k.face.embedding, p.face.embedding) >= t.duplicate_identity)), None)
        if twin is None:
            kept.append(p)
        else:
            p.add("duplicate", WARN, None, None, f"It nearly repeats {twin.file}, which is kept instead.")


def _quality_score(p: PhotoCheck, t: CaptureThresholds) -> float:
    """0-1 score for ranking: sharpness, face size, exposure, frontal-ness, minus warnings."""
    m = p.metrics
    sharp = min(1.0, math.log1p(m.get("sharpness", 0)) / math.log1p(600))
    size = min(1.0, m.get("face_px", 0) / 400)
    exposure = max(0.0, 1 - abs(m.get("luminance", 60) - 62) / 30)
    pose = max(0.0, 1 - abs(m.get("yaw", 0)) / 60)
    warns = sum(1 for r in p.reasons if r.severity == WARN)
    return max(0.0, 0.35 * sharp + 0.25 * size + 0.25 * exposure + 0.15 * pose - 0.15 * warns)


def _select(usable: list[PhotoCheck], t: CaptureThresholds) -> list[PhotoCheck]:
    """Best photos first, but one of each pose before the second of any, up to select_max."""
    ranked = sorted(usable, key=lambda p: -p.score)
    chosen: list[PhotoCheck] = []
    seen_bins: set[str] = set()
    for p in ranked:  # first pass: the best photo of every pose present
        if p.pose not in seen_bins:
            chosen.append(p)
            seen_bins.add(p.pose)
    for p in ranked:
        if len(chosen) >= t.select_max:
            break
        if p not in chosen:
            chosen.append(p)
    return sorted(chosen[: t.select_max], key=lambda p: -p.score)


def _advice(photos: list[PhotoCheck], usable: list[PhotoCheck], coverage: dict[str, int], t: CaptureThresholds) -> list[str]:
    advice: list[str] = []
    missing = t.recommended_photos - len(usable)
    if missing > 0:
        advice.append(f"Add at least {missing} more good photo{'s' if missing > 1 else ''}.")
    wording = {"frontal": "facing the camera straight on", "turned_left": "turned slightly to your left",
               "turned_right": "turned slightly to your right", "chin_up": "with your chin slightly up",
               "chin_down": "with your chin slightly down"}
    for pose in POSE_BINS:
        if usable and coverage[pose] == 0:
            advice.append(f"Add two photos {wording[pose]}.")
    counts: dict[str, int] = {}
    for p in photos:
        for r in p.reasons:
            if r.severity == REJECT or r.code in ("duplicate", "heavy_filter"):
                counts[r.code] = counts.get(r.code, 0) + 1
    for code, n in sorted(counts.items(), key=lambda kv: -kv[1]):
        advice.append(f"{n} photo{'s were' if n > 1 else ' was'} set aside for '{code}': {ADVICE[code]}")
    return advice


# --------------------------------------------------------------------------- entry point

Source = str | Path | tuple[str, bytes]


def expand_sources(paths: Iterable[str | Path]) -> list[Path]:
    """Files as given, and the files directly inside any directory, in name order."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(sorted(f for f in p.iterdir() if f.is_file() and not f.name.startswith(".")))
        else:
            out.append(p)
    return out


def check_capture(sources: Sequence[Source], analyzer: FaceAnalyzer | None = None,
                  thresholds: CaptureThresholds = DEFAULT_THRESHOLDS, limits: IntakeLimits = IntakeLimits(),
                  workers: int = 2, progress: bool = False) -> CaptureReport:
    """Check every photo (in parallel threads: decoding and OpenCV release the GIL), then the set.

    ``progress`` shows a tqdm bar, which the app forwards to the page with ``gr.Progress(track_tqdm=True)``.
    """
    analyzer = analyzer or default_analyzer()
    if workers > 1:
        # The photo threads already fill the cores; OpenCV's own pool inside each detect/embed
        # only adds hand-offs. Process-wide, so it also covers the app's other OpenCV calls.
        cv2.setNumThreads(1)

    def one(src: Source) -> PhotoCheck:
        if isinstance(src, tuple):
            name, data = src
            return check_photo(data, name, analyzer, thresholds, limits)
        return check_photo(src, Path(src).name, analyzer, thresholds, limits)

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        results = list(tqdm(pool.map(one, sources), total=len(sources), desc="Checking photos",
                            unit="photo", disable=not progress))
    return CaptureReport(photos=results, set=check_set(results, thresholds))
