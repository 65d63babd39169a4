"""Review of generated headshots before anything is published.

Rule: an image that fails any of the three layers -- identity, realism, context -- must not be
published. Each layer returns a :class:`LayerResult` with a verdict (``pass`` / ``warn`` /
``fail``), machine-readable reasons and the measured numbers, so the UI can show *why*.

- identity: SFace cosine to the capture set's centroid and to its nearest photo; no face, several
  faces, too different, or a near-copy of one capture photo (anti copy-paste). A second,
  independent recognizer (dlib's ResNet descriptor by default, see :mod:`pipeline.recognizers`)
  gives its own verdict, and a disagreement between the two is flagged.
- realism: face sharpness, skin texture against the capture set's own texture (plastic skin),
  eye/landmark plausibility, colour cast and clipped highlights.
- context: the preset's output framing (eye line, head size, headroom, circle-crop safety),
  background uniformity and colour distance (ΔE) to the preset's backdrop, colour temperature.

Every threshold lives in :class:`ReviewThresholds`, with where its number comes from.
"""
from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from .faces import FaceAnalysis, FaceAnalyzer, FaceInfo, cosine
from .framing import FramingSpec, Crop, SPECS, circle_safety, head_geometry
from .quality import measure_face
from .recognizers import second_recognizer

VERDICTS = ("pass", "warn", "fail")
STATS_SIDE = 256  # background colour statistics are measured at this size


@dataclass(frozen=True)
class ReviewThresholds:
    # --- identity (OpenCV SFace int8, YuNet crops) ---
    # deepface's full set: same-person pairs min 0.49, different-person max 0.41; on the 33 shared
    # photos same >= 0.63, different <= 0.44. Similarity to the centroid of a capture set is higher
    # than pairwise for the same person and not for impostors. Measured (reference = 7 p01 photos,
    # p01_img1 held out): held-out photo 0.74, its flip / crop / JPEG q50 copies 0.75-0.76, a
    # blurred copy 0.62; every photo of p02-p07 <= 0.24. Pass at 0.50, fail below 0.42.
    identity_pass: float = 0.50
    identity_fail: float = 0.42
    # Nearest single capture photo: an impostor's best match measured <= 0.27 here (<= 0.44 pairwise).
    nearest_fail: float = 0.40
    # Anti copy-paste: a re-encoded / lightly edited copy of a capture photo scores >= 0.97 with
    # the same pose (JPEG q85 re-encode: 0.996); distinct photos of the same person in the shared
    # set measured <= 0.89 (p03_img16/p03_img62), so 0.93 leaves a margin.
    near_copy_warn: float = 0.93
    near_copy_fail: float = 0.97
    near_copy_pose_deg: float = 4.0  # |Δyaw| and |Δpitch| both under this: same pose
    # A second face counts when it is at least this share of the primary face's area (a tiny
    # background face in a crowd is not the subject's twin, but a partner in a couple photo is).
    second_face_area: float = 0.15

    # --- realism ---
    # Laplacian variance on the 192 px face crop (quality.measure_face): real photos measured
    # 100-1020 on the 36 shared photos; Gaussian blur of sigma face/40 drops one to 4.8.
    sharpness_fail: float = 12.0
    sharpness_warn: float = 30.0
    # Skin texture relative to the capture set's median (quality.texture_energy): unfiltered
    # photos 0.36-2.8 absolute. Against a p01 reference (median 1.86): other real photos >= 0.62
    # (JPEG q50 copy 0.80); three strong bilateral passes 0.21, blur sigma face/40 0.20.
    texture_fail_ratio: float = 0.45
    texture_warn_ratio: float = 0.65
    # Inter-eye (iris) distance over the detector box width: the shared photos measured 0.40-0.50.
    interocular_range: tuple[float, float] = (0.22, 0.62)
    # Eye opening widths (mesh corners) left/right, after correcting for yaw foreshortening.
    eye_symmetry_warn: float = 1.6
    # Grey-world chroma of the whole image (Lab units): the shared real photos measured 1.4-21.0
    # (warm indoor light the top); a (1, .75, .45) channel cast measured 33.1.
    cast_warn: float = 16.0
    cast_fail: float = 24.0
    # Share of face-centre pixels blown out.
    clipped_warn: float = 0.03
    clipped_fail: float = 0.15

    # --- context ---
    eye_line_warn: float = 0.05  # |measured - spec| as a share of the frame height
    eye_line_fail: float = 0.12
    head_ratio_warn: tuple[float, float] = (0.80, 1.25)  # measured / spec head height
    head_ratio_fail: tuple[float, float] = (0.55, 1.70)
    headroom_min: float = 0.02  # crown this close (share of frame height) to the top edge = cut
    # Background: std of L* outside the person mask; a studio backdrop is < 8, a room is > 15.
    background_std_warn: float = 12.0
    background_std_fail: float = 25.0
    # CIE76 ΔE between the median background and the preset backdrop: 10 is a clearly visible
    # difference side by side, 25 a different colour.
    delta_e_warn: float = 10.0
    delta_e_fail: float = 25.0
    # Correlated colour temperature (McCamy) of the background / grey world: daylight-balanced
    # output sits within 4500-7500 K.
    cct_range: tuple[float, float] = (4000.0, 8000.0)
    aspect_tolerance: float = 0.02


THRESHOLDS = ReviewThresholds()


# --- results --------------------------------------------------------------------------------------

def _num(v):
    if v is None:
        return None
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return None if not math.isfinite(float(v)) else round(float(v), 4)
    if isinstance(v, dict):
        return {k: _num(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_num(x) for x in v]
    return v


@dataclass
class LayerResult:
    verdict: str = "pass"
    reasons: list[dict] = field(default_factory=list)
    values: dict = field(default_factory=dict)

    def add(self, level: str, code: str, message: str, value=None, threshold=None) -> None:
        self.reasons.append({"code": code, "level": level, "message": message,
                             "value": _num(value), "threshold": _num(threshold)})
        if VERDICTS.index(level) > VERDICTS.index(self.verdict):
            self.verdict = level

    @property
    def codes(self) -> list[str]:
        return [r["code"] for r in self.reasons]

    def to_dict(self) -> dict:
        return {"verdict": self.verdict, **{k: _num(v) for k, v in self.values.items()}, "reasons": list(self.reasons)}


@dataclass
class ReviewReport:
    file: str
    verdict: str
    identity: LayerResult
    realism: LayerResult
    context: LayerResult

    @property
    def publishable(self) -> bool:
        return self.verdict != "fail"

    def to_dict(self) -> dict:
        return {"file": self.file, "verdict": self.verdict, "identity": self.identity.to_dict(),
                "realism": self.realism.to_dict(), "context": self.context.to_dict()}


# --- reference ------------------------------------------------------------------------------------

@dataclass
class Reference:
    files: list[str]
    embeddings: np.ndarray  # N x D, L2-normalised, one per capture photo's primary face
    centroid: np.ndarray  # normalised mean
    texture_median: float
    sharpness_median: float
    yaw: list[float]
    pitch: list[float | None]
    second_embeddings: np.ndarray | None = None  # the second recognizer's, when there is one
    second_centroid: np.ndarray | None = None
    second_name: str | None = None
    skipped: list[str] = field(default_factory=list)  # capture photos without a face


_DEFAULT_ANALYZER: FaceAnalyzer | None = None


def _analyzer(analyzer: FaceAnalyzer | None) -> FaceAnalyzer:
    global _DEFAULT_ANALYZER
    if analyzer is not None:
        return analyzer
    try:
        from .capture import default_analyzer
        return default_analyzer()
    except Exception:  # pragma: no cover - capture package unavailable
        if _DEFAULT_ANALYZER is None:
            _DEFAULT_ANALYZER = FaceAnalyzer()
        return _DEFAULT_ANALYZER


def _load_rgb(source) -> tuple[str, np.ndarray]:
    if isinstance(source, np.ndarray):
        return "(array)", np.ascontiguousarray(source[..., :3].astype(np.uint8))
    from .intake import open_photo
    photo = open_photo(source)
    return str(source), photo.rgb


def build_reference(paths, analyzer: FaceAnalyzer | None = None) -> Reference:
    """Reference from a capture folder or a list of photos (paths or RGB arrays)."""
    if isinstance(paths, (str, Path)) and Path(paths).is_dir():
        paths = sorted(p for p in Path(paths).iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".webp", ".heic"))
    analyzer = _analyzer(analyzer)
    second, _ = second_recognizer()
    files, embs, tex, sharp, yaws, pitches, seconds, skipped = [], [], [], [], [], [], [], []
    for p in paths:
        name, rgb = _load_rgb(p)
        face = analyzer.analyze(rgb).primary
        if face is None:
            skipped.append(name)
            continue
        q = measure_face(rgb, face)
        files.append(name)
        embs.append(face.embedding)
        tex.append(q.texture)
        sharp.append(q.sharpness)
        yaws.append(face.yaw)
        pitches.append(face.pitch)
        if second is not None:
            seconds.append(second.embed(rgb, face.box))
    if not embs:
        raise ValueError("No face found in any capture photo; cannot build a reference.")
    E = np.stack(embs).astype(np.float32)
    mean = E.mean(axis=0)
    ref = Reference(files, E, mean / max(float(np.linalg.norm(mean)), 1e-8), float(np.median(tex)),
                    float(np.median(sharp)), yaws, pitches, skipped=skipped)
    seconds = [s for s in seconds if s is not None]
    if seconds:
        ref.second_embeddings = np.stack(seconds)
        ref.second_centroid = second.centroid(ref.second_embeddings)
        ref.second_name = second.name
    return ref


# --- layers ---------------------------------------------------------------------------------------

def _review_identity(rgb, analysis: FaceAnalysis, ref: Reference, t: ReviewThresholds,
                     use_second: bool = True) -> LayerResult:
    res = LayerResult()
    face = analysis.primary
    res.values["faces"] = len(analysis.faces)
    if face is None:
        res.add("fail", "no_face", "No face was found in the image.", 0, 1)
        res.values.update(centroid_similarity=None, nearest_similarity=None, second_recognizer=None)
        return res
    big = [f for f in analysis.faces if f.area >= t.second_face_area * face.area]
    res.values["faces_counted"] = len(big)
    if len(big) > 1:
        res.add("fail", "multiple_faces", f"{len(big)} faces in the image; a headshot shows one person.",
                len(big), 1)
    c = cosine(face.embedding, ref.centroid)
    sims = ref.embeddings @ face.embedding
    i = int(np.argmax(sims))
    near = float(sims[i])
    res.values.update(centroid_similarity=c, nearest_similarity=near, nearest_file=ref.files[i])
    if c < t.identity_fail or near < t.nearest_fail:
        res.add("fail", "identity_mismatch", "The face does not match the captured person.", c, t.identity_fail)
    elif c < t.identity_pass:
        res.add("warn", "identity_weak", "The face matches the captured person only weakly.", c, t.identity_pass)
    dyaw = abs(face.yaw - ref.yaw[i])
    dpitch = abs(face.pitch - ref.pitch[i]) if face.pitch is not None and ref.pitch[i] is not None else 0.0
    res.values.update(nearest_dyaw=dyaw, nearest_dpitch=dpitch)
    if near >= t.near_copy_warn and dyaw < t.near_copy_pose_deg and dpitch < t.near_copy_pose_deg:
        level = "fail" if near >= t.near_copy_fail else "warn"
        res.add(level, "near_copy", f"Nearly a copy of capture photo {Path(ref.files[i]).name} (same face and pose).",
                near, t.near_copy_fail if level == "fail" else t.near_copy_warn)
    second, note = second_recognizer() if use_second else (None, "second recognizer skipped for this run")
    res.values.update(second_recognizer=None, second_recognizer_name=note if second is None else second.name)
    if second is not None and ref.second_centroid is not None and ref.second_name == second.name:
        e2 = second.embed(rgb, face.box)
        if e2 is not None:
            cmp = second.compare(e2, ref.second_centroid)
            res.values.update(second_recognizer=cmp.value, second_metric=cmp.metric,
                              second_threshold=cmp.threshold, second_match=cmp.match)
            # Disagreement on the decision: one says same person, the other says someone else.
            # (In SFace's warn zone there is no firm decision to disagree with.)
            first = True if c >= t.identity_pass else False if c < t.identity_fail else None
            if first is not None and first != cmp.match:
                res.add("warn", "recognizer_disagreement",
                        f"The two face recognizers disagree: SFace says {'the same' if first else 'another'} person, "
                        f"{second.name} says {'the same' if cmp.match else 'another'}.", cmp.value, cmp.threshold)
    return res


# Face-mesh eye corners: image-left eye (33 outer, 133 inner), image-right eye (362 inner, 263 outer).
_EYE_L, _EYE_R = (33, 133), (362, 263)


def _review_realism(rgb, face: FaceInfo | None, ref: Reference, t: ReviewThresholds) -> LayerResult:
    res = LayerResult()
    if face is None:
        res.add("fail", "no_face", "No face to assess.", 0, 1)
        return res
    q = measure_face(rgb, face)
    ratio = q.texture / max(ref.texture_median, 1e-6)
    res.values.update(sharpness=q.sharpness, texture=q.texture, texture_reference=ref.texture_median,
                      texture_ratio=ratio, luminance=q.luminance, clipped=q.clipped, cast=q.cast)
    if q.sharpness < t.sharpness_fail:
        res.add("fail", "blurred", "The face is blurred.", q.sharpness, t.sharpness_fail)
    elif q.sharpness < t.sharpness_warn:
        res.add("warn", "soft", "The face is soft.", q.sharpness, t.sharpness_warn)
    if ratio < t.texture_fail_ratio:
        res.add("fail", "plastic_skin", "Skin texture is far smoother than in the capture photos (plastic skin).",
                ratio, t.texture_fail_ratio)
    elif ratio < t.texture_warn_ratio:
        res.add("warn", "smooth_skin", "Skin texture is smoother than in the capture photos.", ratio, t.texture_warn_ratio)
    lm = face.landmarks
    if "left_eye" not in lm or "right_eye" not in lm:
        res.add("fail", "eyes_missing", "Both eyes were not found.")
    else:
        iod = face.interocular / max(face.box[2], 1.0)
        res.values["interocular_ratio"] = iod
        lo, hi = t.interocular_range
        if not lo <= iod <= hi:
            res.add("fail", "implausible_eyes", "Eye spacing is outside the human range for this face width.",
                    iod, [lo, hi])
    if face.mesh is not None:
        m = face.mesh
        wl = float(np.hypot(*(m[_EYE_L[0], :2] - m[_EYE_L[1], :2])))
        wr = float(np.hypot(*(m[_EYE_R[0], :2] - m[_EYE_R[1], :2])))
        asym = max(wl, wr) / max(min(wl, wr), 1e-6)
        # Turning the head foreshortens the far eye: allow for it up to ~1/cos(yaw)^2.
        allowed = t.eye_symmetry_warn / max(math.cos(math.radians(min(abs(face.yaw), 60))) ** 2, 0.25)
        res.values["eye_asymmetry"] = asym
        if asym > allowed:
            res.add("warn", "eye_asymmetry", "The two eyes differ in size more than a real face does.", asym, allowed)
    else:
        res.values["eye_asymmetry"] = None
    if q.cast > t.cast_fail:
        res.add("fail", "colour_cast", "Strong colour cast.", q.cast, t.cast_fail)
    elif q.cast > t.cast_warn:
        res.add("warn", "colour_cast", "Noticeable colour cast.", q.cast, t.cast_warn)
    if q.clipped > t.clipped_fail:
        res.add("fail", "clipped_highlights", "Blown-out highlights on the face.", q.clipped, t.clipped_fail)
    elif q.clipped > t.clipped_warn:
        res.add("warn", "clipped_highlights", "Some highlights on the face are blown out.", q.clipped, t.clipped_warn)
    return res


def _lab(rgb: np.ndarray) -> np.ndarray:
    """CIE L*a*b* (D65) of sRGB pixels: OpenCV on float32 in [0, 1] returns L in 0-100, a/b signed."""
    return cv2.cvtColor(rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)


def delta_e76(lab1, lab2) -> float:
    """CIE76 colour difference: Euclidean distance in L*a*b*."""
    return float(np.linalg.norm(np.asarray(lab1, float) - np.asarray(lab2, float)))


def cct_mccamy(rgb_mean) -> float | None:
    """Correlated colour temperature (K) of a mean sRGB colour, by McCamy's approximation."""
    c = np.asarray(rgb_mean, float) / 255.0
    lin = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    M = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])
    X, Y, Z = M @ lin
    s = X + Y + Z
    if s <= 1e-6:
        return None
    x, y = X / s, Y / s
    if abs(0.1858 - y) < 1e-6:
        return None
    n = (x - 0.3320) / (0.1858 - y)
    return float(449 * n ** 3 + 3525 * n ** 2 + 6823.3 * n + 5520.33)


def _spec(preset) -> tuple[FramingSpec, tuple[int, int, int], bool, str]:
    if preset is None:
        s = SPECS["linkedin"]
        return s, (200, 200, 200), True, "linkedin (default)"
    if isinstance(preset, str):
        from .presets import get_preset
        preset = get_preset(preset)
    o = preset.output
    return (FramingSpec(o.aspect_ratio, o.eye_line, o.head_height, preset.name), tuple(o.background_rgb),
            bool(o.circle_safe), preset.name)


def _review_context(rgb, analysis: FaceAnalysis, preset, t: ReviewThresholds) -> LayerResult:
    res = LayerResult()
    spec, bg_rgb, want_circle, name = _spec(preset)
    H, W = rgb.shape[:2]
    res.values.update(preset=name, aspect=W / H, spec_aspect=spec.aspect, spec_eye_line=spec.eye_line,
                      spec_head_height=spec.head_height)
    if abs(W / H - spec.aspect) > t.aspect_tolerance * spec.aspect:
        res.add("warn", "aspect", "The image's aspect differs from the preset's.", W / H, spec.aspect)
    face, mask = analysis.primary, analysis.person_mask
    if face is None:
        res.add("fail", "no_face", "No face to frame.", 0, 1)
    else:
        g = head_geometry(face, (W, H), mask)
        eye = g.eye_y / H
        head = g.head / H
        d = abs(eye - spec.eye_line)
        res.values.update(eye_line=eye, head_height=head, crown_y=g.crown_y / H, chin_y=g.chin_y / H,
                          crown_source=g.crown_source)
        if d > t.eye_line_fail:
            res.add("fail", "eye_line", "The eyes are far from the preset's eye line.", eye, spec.eye_line)
        elif d > t.eye_line_warn:
            res.add("warn", "eye_line", "The eyes are off the preset's eye line.", eye, spec.eye_line)
        r = head / spec.head_height
        res.values["head_ratio"] = r
        if not t.head_ratio_fail[0] <= r <= t.head_ratio_fail[1]:
            res.add("fail", "head_size", "The head is far too small or large for the frame.", r, list(t.head_ratio_fail))
        elif not t.head_ratio_warn[0] <= r <= t.head_ratio_warn[1]:
            res.add("warn", "head_size", "The head size is off the preset's.", r, list(t.head_ratio_warn))
        if g.crown_y / H < t.headroom_min:
            res.add("fail", "crown_cut", "The top of the head is cut by the frame.", g.crown_y / H, t.headroom_min)
        if g.chin_y / H > 1 - t.headroom_min:
            res.add("fail", "chin_cut", "The chin is cut by the frame.", g.chin_y / H, 1 - t.headroom_min)
        # The image itself is the delivered crop; the circle is inscribed in its central square.
        side = min(W, H)
        x0, y0 = (W - side) // 2, (H - side) // 2
        crop = Crop((x0, y0, x0 + side, y0 + side), (W, H), spec, geometry=g)
        circ = circle_safety(crop, face, mask)
        res.values["circle_margins"] = circ["margins"]
        res.values["circle_safe"] = circ["safe"]
        if want_circle and not circ["safe"]:
            res.add("warn", "circle_unsafe", "Part of the head would be cut by a circular avatar crop.",
                    min(circ["margins"].values()), 0.05)
    # Background statistics (medians, spread) are the same at 256 px as at full size, at a
    # sixteenth of the cost: full-size medians were a third of a review's time.
    f = min(1.0, STATS_SIDE / max(H, W))
    small = cv2.resize(rgb, (max(1, round(W * f)), max(1, round(H * f))), interpolation=cv2.INTER_AREA) \
        if f < 1 else rgb
    sh, sw = small.shape[:2]
    lab = _lab(small)
    if mask is not None:
        bgm = cv2.resize(mask, (sw, sh), interpolation=cv2.INTER_LINEAR) < 0.2
    else:
        bgm = np.zeros((sh, sw), bool)
    res.values["background_share"] = float(bgm.mean())
    if bgm.sum() >= 0.03 * sh * sw:
        pix = lab[bgm]
        med = np.median(pix, axis=0)
        std = float(np.std(pix[:, 0]))
        target = _lab(np.array([[bg_rgb]], np.uint8))[0, 0]
        de = delta_e76(med, target)
        cct = cct_mccamy(np.median(small[bgm], axis=0))
        res.values.update(background_std=std, background_lab=[float(v) for v in med], delta_e=de,
                          background_target_rgb=list(bg_rgb))
        if std > t.background_std_fail:
            res.add("fail", "background_busy", "The background is far from uniform.", std, t.background_std_fail)
        elif std > t.background_std_warn:
            res.add("warn", "background_busy", "The background is not uniform.", std, t.background_std_warn)
        if de > t.delta_e_fail:
            res.add("fail", "background_colour", "The background colour differs from the preset's backdrop.", de, t.delta_e_fail)
        elif de > t.delta_e_warn:
            res.add("warn", "background_colour", "The background colour is off the preset's backdrop.", de, t.delta_e_warn)
    else:
        # No background to speak of: estimate temperature from the grey world of the whole image.
        cct = cct_mccamy(rgb.reshape(-1, 3).mean(axis=0))
        res.values.update(background_std=None, delta_e=None)
    res.values["colour_temperature_k"] = cct
    if cct is not None and not t.cct_range[0] <= cct <= t.cct_range[1]:
        bias = "warm" if cct < t.cct_range[0] else "cool"
        res.add("warn", "colour_temperature", f"The light looks {bias} ({cct:.0f} K).", cct, list(t.cct_range))
    return res


def _worst(*layers: LayerResult) -> str:
    return VERDICTS[max(VERDICTS.index(x.verdict) for x in layers)]


def review_image(source, reference: Reference, preset=None, analyzer: FaceAnalyzer | None = None,
                 thresholds: ReviewThresholds = THRESHOLDS, second: bool = True) -> ReviewReport:
    """Review one image (a path, or an RGB uint8 array) against the reference.

    ``second=False`` skips the second recognizer (dlib's descriptor, run in torch: ~8 ms of a
    ~110 ms review), at the price of the independent second opinion.
    """
    name, rgb = _load_rgb(source)
    analysis = _analyzer(analyzer).analyze(rgb, with_mask=True)
    identity = _review_identity(rgb, analysis, reference, thresholds, second)
    realism = _review_realism(rgb, analysis.primary, reference, thresholds)
    context = _review_context(rgb, analysis, preset, thresholds)
    return ReviewReport(name, _worst(identity, realism, context), identity, realism, context)


def review_many(paths, reference: Reference, preset=None, workers: int = 2,
                analyzer: FaceAnalyzer | None = None, second: bool = True) -> list[ReviewReport]:
    """Review several images in a thread pool (the analyzer lends one model set per thread)."""
    analyzer = _analyzer(analyzer)
    if workers > 1:
        # As in capture: the image threads fill the cores; OpenCV's own pool only adds hand-offs.
        cv2.setNumThreads(1)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        return list(pool.map(lambda p: review_image(p, reference, preset, analyzer, second=second), paths))
