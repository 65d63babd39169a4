"""One member photo -> one standardised portrait: crop, colour, background, measurements, verdict."""
from __future__ import annotations

import dataclasses
import logging
import math
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from ..faces import FaceAnalyzer
from ..framing import FramingSpec
from ..intake import IntakeError, IntakeLimits, Photo, open_photo
from ..presets.styleguide import StyleGuide
from . import background as bgmod
from . import colour, crop
from .names import member_name
from .report import DEFAULT_THRESHOLDS, FAIL, WARN, PortraitResult, Reason, StandardizeThresholds

log = logging.getLogger(__name__)

DECODE_SIDE = 2048  # 4032 px phone photos decode at 1/2 scale (2016 px): enough for a 1500 px portrait

Source = str | Path | tuple[str, bytes]


def member_id_for(name: str) -> str:
    from ..export import slugify

    return slugify(Path(name).stem, "member").lower()


def _default_analyzer() -> FaceAnalyzer:
    from ..capture import default_analyzer

    return default_analyzer()


def standardize_photo(source: Source, guide: StyleGuide, background: str | None = None, *,
                      analyzer: FaceAnalyzer | None = None, size: tuple[int, int] | None = None,
                      member_id: str | None = None, person: dict[str, str] | None = None, verify: bool = True,
                      thresholds: StandardizeThresholds = DEFAULT_THRESHOLDS,
                      limits: IntakeLimits = IntakeLimits()) -> PortraitResult:
    """Standardise one photo (a path, or ``(name, bytes)``) to ``guide``; never raises for a bad photo.

    ``background`` is one of the guide's approved background ids (default: the guide's default);
    an unknown id raises ``PresetError`` (a usage error, not a photo problem). ``size`` is the
    output (w, h) and must have the guide's aspect; default 1200 px wide. ``verify`` analyses the crop
    again (face landmarks and a finer person mask at portrait scale), so the reported eye line and
    head size are measured, not just planned, and the matte is better.
    """
    spec = guide.framing_spec()
    bg = guide.background(background)
    size = tuple(size) if size else crop.working_size(spec)
    p, q = spec.ratio()
    if size[0] * q != size[1] * p:
        raise ValueError(f"size {size[0]}x{size[1]} does not have the guide's aspect {guide.framing.aspect}")
    name, data = source if isinstance(source, tuple) else (Path(source).name, source)
    result = PortraitResult(file=name, member_id=member_id or member_id_for(name),
                            person=person or member_name(name), guide=guide.key, background=bg.id, size=size)
    try:
        _standardize(result, data, name, guide, spec, bg, size, analyzer or _default_analyzer(), verify,
                     thresholds, limits)
    except IntakeError as exc:
        result.reasons.append(Reason(exc.code, FAIL, exc.message, exc.value, exc.threshold))
    except Exception as exc:  # one bad photo must never take a batch down
        log.warning("standardize: a photo failed with %s", type(exc).__name__, exc_info=log.isEnabledFor(logging.DEBUG))
        result.image = None
        result.add("processing_error", FAIL, detail=f"({type(exc).__name__})")
    return result


def _standardize(result: PortraitResult, data, name: str, guide: StyleGuide, spec: FramingSpec, bg,
                 size: tuple[int, int], analyzer: FaceAnalyzer, verify: bool, t: StandardizeThresholds,
                 limits: IntakeLimits) -> None:
    # One decode serves both the analysis and (usually) the output: at DECODE_SIDE a 12-48 MP phone
    # JPEG decodes at a DCT scale (1/2, 1/4) with no resampling in Pillow, and the analysis copy is an
    # area-averaged shrink of it. Only a crop that needs more pixels decodes again (_decode_for).
    big = open_photo(data, name, dataclasses.replace(limits, analysis_side=max(limits.analysis_side, DECODE_SIDE)))
    photo = _analysis_copy(big, limits.analysis_side)
    analysis = analyzer.analyze(photo.rgb, with_mask=True, embed=False)
    face = analysis.primary
    if face is None:
        result.add("no_face", FAIL)
        return
    if len(analysis.faces) > 1:
        ratio = max(f.box[2] for f in analysis.faces[1:]) / max(face.box[2], 1e-6)
        if ratio >= t.second_face_warn:
            result.add("multiple_faces", FAIL if ratio >= t.second_face_fail else WARN, ratio,
                       t.second_face_fail if ratio >= t.second_face_fail else t.second_face_warn)
            if ratio >= t.second_face_fail:
                return
    if abs(face.yaw) > t.yaw_warn:
        result.add("extreme_pose", WARN, abs(face.yaw), t.yaw_warn)

    place = crop.plan(face, analysis.image_size, photo.scale, photo.original_size, spec, size, analysis.person_mask)
    m = result.metrics
    m.upscale, m.zoom, m.padded = place.scale, place.zoom, dict(place.padded or {})
    if place.scale > t.upscale_warn:
        bad = place.scale > t.upscale_fail
        result.add("low_resolution", FAIL if bad else WARN, place.scale, t.upscale_fail if bad else t.upscale_warn,
                   f"({place.scale:.1f}x enlarged)")
    if place.zoom > t.zoom_warn:
        bad = place.zoom > t.zoom_fail
        result.add("crop_padded_below", FAIL if bad else WARN, place.zoom, t.zoom_fail if bad else t.zoom_warn,
                   f"(head {100 * (place.zoom - 1):.0f}% larger than the guide asks)")
    if cuts := crop.edge_cuts(analysis.person_mask, place, photo.scale, t.edge_cut_share):
        result.add("person_cut_at_edge", WARN, detail=f"(edge: {', '.join(cuts)})")

    src, ppo = _decode_for(place, big, data, name, limits)
    del big
    # Canvas beyond the photo starts as the new background's colour, so the segmenter sees a backdrop there.
    img = crop.warp(src, place, ppo, border=tuple(float(v) for v in _mean_rgb(bg)))
    del src
    valid = _valid(place, ppo, img.shape[:2])

    # Second look, on the crop itself: the person fills the segmenter's 256 px input (a matte about
    # twice as fine as on the whole photo), and the landmarks measure the placement actually achieved.
    check = analyzer.analyze(img, with_mask=True, embed=False) if verify else None
    seen = check.primary if check is not None else None
    if check is not None and check.person_mask is not None:
        coarse = check.person_mask
    else:
        coarse = crop.warp(analysis.person_mask, place, photo.scale, cv2.INTER_LINEAR, 0)

    # Placement as planned; replaced by the measurement on the crop when there is one.
    bx, by, bw, bh = face.box
    eye = place.to_output(np.array(place.eye) * photo.scale, photo.scale)
    chin_out = place.to_output(np.array(face.landmarks.get("chin", (bx + bw / 2, by + bh))), photo.scale)
    m.eye_line, m.eye_centre = eye[1] / size[1], eye[0] / size[0]
    m.head_height = 2 * (chin_out[1] - eye[1]) / size[1]
    if seen is not None:
        ey = (seen.landmarks["left_eye"][1] + seen.landmarks["right_eye"][1]) / 2
        ex = (seen.landmarks["left_eye"][0] + seen.landmarks["right_eye"][0]) / 2
        cy = seen.landmarks.get("chin", (0, seen.box[1] + seen.box[3]))[1]
        m.eye_line, m.eye_centre = ey / size[1], ex / size[0]
        m.head_height, m.measured_by = 2 * (cy - ey) / size[1], "analyzer"

    # Colour, measured on the face skin of the crop.
    if seen is not None and seen.mesh is not None:
        skin = colour.skin_mask(size, seen.mesh, seen.box)
    else:
        mesh_out = None if face.mesh is None else place.to_output(face.mesh, photo.scale)
        (x0, y0), (x1, y1) = place.to_output(np.array([[bx, by], [bx + bw, by + bh]]), photo.scale)
        skin = colour.skin_mask(size, mesh_out, (x0, y0, x1 - x0, y1 - y0))
    skin[valid < 1] = 0
    before = colour.measure(img, skin)
    g = guide.colour
    grade = colour.Grade.identity(g.saturation) if before is None else colour.solve(
        before, colour.skin_target_cct(g.white_balance_k), g.exposure_l, g.saturation)
    if grade.limited:
        result.add("colour_limited", WARN, detail=f"({' and '.join(x.replace('_', ' ') for x in grade.limited)})")
    graded = colour.apply(img, grade)
    after = colour.measure(graded, skin)
    if before is not None:
        m.face_cct_before, m.face_l_before = before.cct, before.l_star
    if after is not None:
        m.face_cct_after, m.face_l_after = after.cct, after.l_star
    m.corrections = grade.to_dict()
    m.face_cct_target, m.face_l_target = colour.skin_target_cct(g.white_balance_k), g.exposure_l

    # Background: refined matte, decontaminated edges, approved backdrop.
    alpha = bgmod.refine_mask(coarse, img, valid)
    del coarse, img
    fg = bgmod.decontaminate(graded, alpha, sigma=0.02 * max(size))
    ref = bgmod.render(bg, size)
    out = bgmod.composite(fg, alpha, ref)
    del fg
    m.background_delta_e = bgmod.background_delta_e(out, ref, alpha)
    if m.background_delta_e is not None and m.background_delta_e > t.background_delta_e_warn:
        result.add("background_mismatch", WARN, m.background_delta_e, t.background_delta_e_warn)
    result.image = Image.fromarray(out)


def _analysis_copy(photo: Photo, side: int) -> Photo:
    """``photo`` shrunk (area-averaged) to at most ``side`` on its long side, for the face analysis.

    ``Photo.scale`` follows from the pixel width, so the analysis coordinates map back exactly."""
    h, w = photo.rgb.shape[:2]
    if max(h, w) <= side:
        return photo
    # An integer reduction where it lands within the limit: OpenCV's area filter is 4x faster there.
    k = math.ceil(max(h, w) / side)
    size = (max(1, w // k), max(1, h // k)) if max(h, w) // k >= 0.75 * side else \
        (max(1, round(w * side / max(h, w))), max(1, round(h * side / max(h, w))))
    rgb = cv2.resize(photo.rgb, size, interpolation=cv2.INTER_AREA)
    return dataclasses.replace(photo, rgb=rgb)


def _decode_for(place: crop.Placement, photo: Photo, data, name: str, limits: IntakeLimits) -> tuple[np.ndarray, float]:
    """The photo at enough resolution for the output (pixels, pixels per original pixel).

    ``photo`` (the first decode) is used when it covers the crop within 10%; otherwise intake decodes
    again at the JPEG DCT scale (1/1, 1/2, 1/4, 1/8) that covers it, so Pillow's resize is a no-op.
    """
    long_side = max(photo.original_size)
    need = long_side * min(place.scale, 1.0)
    have = max(photo.rgb.shape[:2])
    if need <= have * 1.1 or have >= long_side:
        return photo.rgb, photo.scale
    k = next(k for k in (8, 4, 2, 1) if long_side / k >= need or k == 1)
    big = open_photo(data, name, dataclasses.replace(limits, analysis_side=math.ceil(long_side / k)))
    return big.rgb, big.scale


def _mean_rgb(bg) -> tuple[int, int, int]:
    rgb = getattr(bg, "rgb", None)
    if rgb is None:  # an image backdrop: its mean colour
        rgb = bgmod.render(bg, (64, 64)).reshape(-1, 3).mean(axis=0)
    return tuple(int(round(float(v))) for v in rgb)


def _valid(place: crop.Placement, ppo: float, out_hw) -> np.ndarray:
    """1 where the output shows the photo, 0 on canvas added around it."""
    h, w = out_hw
    ow, oh = place.original_size
    (x0, y0), (x1, y1) = place.to_output(np.array([[0.0, 0.0], [ow * ppo, oh * ppo]]), ppo)
    valid = np.zeros((h, w), np.float32)
    r0, r1 = max(0, math.ceil(y0 - 1e-6)), min(h, math.floor(y1 + 1e-6))
    c0, c1 = max(0, math.ceil(x0 - 1e-6)), min(w, math.floor(x1 + 1e-6))
    valid[r0:r1, c0:c1] = 1.0
    return valid
