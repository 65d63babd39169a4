"""Review step: identity / realism / context on real photos from ../shared/testdata/faces.

Reference = p01's photos except one held out; other people are impostors. The reference and the
analyses are built once per module to keep the runtime down.
"""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from pipeline.capture import default_analyzer
from pipeline.framing import FramingSpec, head_and_shoulders_box
from pipeline.intake import open_photo
from pipeline.review import (THRESHOLDS, LayerResult, ReviewReport, ReviewThresholds, build_reference,
                             cct_mccamy, delta_e76, review_image, review_many, second_recognizer)

FACES = Path(__file__).resolve().parents[1].parent / "shared" / "testdata" / "faces"
pytestmark = pytest.mark.skipif(not FACES.is_dir(), reason="shared face photos not available")

HELD_OUT = "p01_img1.jpg"
IMPOSTORS = ["p02_img47.jpg", "p02_img8.jpg", "p04_img29.jpg", "p04_img33.jpg", "p07_img24.jpg"]


@pytest.fixture(scope="module")
def reference():
    paths = sorted(p for p in FACES.glob("p01_*.jpg") if p.name != HELD_OUT)
    return build_reference(paths)


@pytest.fixture(scope="module")
def held_rgb():
    return open_photo(FACES / HELD_OUT).rgb


@pytest.fixture(scope="module")
def held_face(held_rgb):
    return default_analyzer().analyze(held_rgb, with_mask=True)


def _jpeg(rgb, q):
    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(rgb[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, q])
    return np.ascontiguousarray(cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1])


def _crop(rgb):
    h, w = rgb.shape[:2]
    return np.ascontiguousarray(rgb[int(h * 0.06):int(h * 0.95), int(w * 0.05):int(w * 0.94)])


AUGMENT = {
    "original": lambda rgb: rgb,
    "flip": lambda rgb: np.ascontiguousarray(rgb[:, ::-1]),
    "mild_crop": _crop,
    "jpeg_q50": lambda rgb: _jpeg(rgb, 50),
}


def test_reference_built(reference):
    assert len(reference.files) == 7 and not reference.skipped
    assert reference.embeddings.shape[0] == 7
    assert abs(float(np.linalg.norm(reference.centroid)) - 1) < 1e-5
    assert reference.texture_median > 0 and len(reference.yaw) == len(reference.pitch) == 7


@pytest.mark.parametrize("aug", list(AUGMENT))
def test_identity_passes_for_same_person(reference, held_rgb, aug):
    report = review_image(AUGMENT[aug](held_rgb), reference)
    ident = report.identity
    assert ident.verdict == "pass", ident.reasons
    assert ident.values["centroid_similarity"] >= THRESHOLDS.identity_pass
    assert "near_copy" not in ident.codes


@pytest.mark.parametrize("name", IMPOSTORS)
def test_identity_fails_for_other_people(reference, name):
    ident = review_image(FACES / name, reference).identity
    assert ident.verdict == "fail"
    assert "identity_mismatch" in ident.codes
    assert ident.values["centroid_similarity"] < THRESHOLDS.identity_fail
    assert report_fails(ident)


def report_fails(layer: LayerResult) -> bool:
    return any(r["level"] == "fail" for r in layer.reasons)


@pytest.mark.parametrize("quality", [95, 85])
def test_near_copy_of_reference_photo_is_flagged(reference, quality):
    copy = _jpeg(open_photo(Path(reference.files[0])).rgb, quality)
    report = review_image(copy, reference)
    assert "near_copy" in report.identity.codes
    assert report.identity.verdict == "fail"
    assert report.verdict == "fail"


def _blur(rgb, face):
    return cv2.GaussianBlur(rgb, (0, 0), face.box[2] / 40)


def _smooth(rgb, face):
    out = rgb
    for _ in range(3):
        out = cv2.bilateralFilter(out, 15, 60, 15)
    return out


def _cast(rgb, face):
    return np.clip(rgb.astype(np.float32) * np.array([1.0, 0.75, 0.45], np.float32), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("edit, code", [(_blur, "blurred"), (_smooth, "plastic_skin"), (_cast, "colour_cast")])
def test_realism_failures(reference, held_rgb, held_face, edit, code):
    report = review_image(edit(held_rgb, held_face.primary), reference)
    assert report.realism.verdict == "fail"
    assert code in [r["code"] for r in report.realism.reasons if r["level"] == "fail"]
    assert report.verdict == "fail"


def test_realism_passes_unedited(reference, held_rgb):
    realism = review_image(held_rgb, reference).realism
    assert realism.verdict != "fail", realism.reasons


def _preset_spec():
    from pipeline.presets import get_preset
    o = get_preset("linkedin").output
    return FramingSpec(o.aspect_ratio, o.eye_line, o.head_height, "linkedin")


def test_context_well_framed_crop_has_no_framing_failure(reference, held_rgb, held_face):
    spec = _preset_spec()
    crop = head_and_shoulders_box(held_face.primary, (held_rgb.shape[1], held_rgb.shape[0]), spec, held_face.person_mask)
    x0, y0, x1, y1 = crop.box
    ctx = review_image(np.ascontiguousarray(held_rgb[y0:y1, x0:x1]), reference, preset="linkedin").context
    framing_fails = [r for r in ctx.reasons if r["level"] == "fail" and r["code"] in ("eye_line", "head_size", "crown_cut", "chin_cut")]
    assert not framing_fails, ctx.reasons
    assert abs(ctx.values["eye_line"] - spec.eye_line) < THRESHOLDS.eye_line_fail


def test_context_face_at_bottom_of_tall_canvas_fails(reference, held_rgb):
    h, w = held_rgb.shape[:2]
    canvas = np.full((int(h * 2.5), w, 3), 200, np.uint8)
    canvas[-h:] = held_rgb
    report = review_image(canvas, reference, preset="linkedin")
    assert report.context.verdict == "fail"
    assert "eye_line" in report.context.codes
    assert report.verdict == "fail"


def test_context_chin_cut_fails(reference, held_rgb, held_face):
    face = held_face.primary
    eye_y = (face.landmarks["left_eye"][1] + face.landmarks["right_eye"][1]) / 2
    cut = np.ascontiguousarray(held_rgb[: int(eye_y + 0.6 * (face.landmarks["chin"][1] - eye_y))])
    ctx = review_image(cut, reference, preset="linkedin").context
    assert ctx.verdict == "fail"
    assert {"chin_cut", "eye_line"} & set(ctx.codes)


def test_no_face_fails_identity(reference):
    rng = np.random.default_rng(0)
    img = np.clip(rng.normal(180, 20, (480, 480, 3)), 0, 255).astype(np.uint8)
    report = review_image(img, reference)
    assert report.identity.verdict == "fail" and "no_face" in report.identity.codes
    assert report.verdict == "fail"
    json.dumps(report.to_dict())


def test_two_people_fail_identity(reference):
    report = review_image(FACES / "couple.jpg", reference)
    assert report.identity.verdict == "fail"
    assert "multiple_faces" in report.identity.codes
    assert report.identity.values["faces_counted"] >= 2


def test_second_recognizer_is_independent_and_calibrated(reference, held_rgb):
    """dlib's descriptor (shipped in wheels) judges the same faces: it matches the held-out photo
    of the captured person and refuses another person, with its own measure and threshold."""
    second, note = second_recognizer()
    assert second is not None, note  # dlib-bin and face_recognition_models are requirements
    assert reference.second_name == second.name and reference.second_embeddings.shape == (len(reference.files), 128)
    ident = review_image(held_rgb, reference).identity
    assert ident.values["second_metric"] == "distance" and ident.values["second_match"] is True
    assert ident.values["second_recognizer"] < ident.values["second_threshold"]
    other = review_image(FACES / "p04_img30.jpg", reference).identity
    assert other.values["second_match"] is False and other.values["second_recognizer"] > other.values["second_threshold"]
    assert "recognizer_disagreement" not in ident.codes + other.codes  # both recognizers agree here


def test_recognizer_disagreement_is_flagged(reference, held_rgb):
    """When the second recognizer's reference is someone else's, SFace (matching) and dlib (not)
    disagree, and the review says so with dlib's measured distance."""
    import dataclasses

    from pipeline.review import build_reference

    stranger = build_reference(sorted(FACES.glob("p02_*.jpg")))
    mixed = dataclasses.replace(reference, second_embeddings=stranger.second_embeddings,
                                second_centroid=stranger.second_centroid)
    ident = review_image(held_rgb, mixed).identity
    assert ident.values["centroid_similarity"] >= 0.5 and ident.values["second_match"] is False
    assert "recognizer_disagreement" in ident.codes and ident.verdict == "warn"


def test_to_dict_round_trips_with_numbers(reference, held_rgb):
    report = review_image(held_rgb, reference, preset="linkedin")
    d = report.to_dict()
    back = json.loads(json.dumps(d))
    assert back == d
    assert set(d) == {"file", "verdict", "identity", "realism", "context"}
    assert d["verdict"] in ("pass", "warn", "fail")
    for layer in ("identity", "realism", "context"):
        assert d[layer]["verdict"] in ("pass", "warn", "fail")
        assert isinstance(d[layer]["reasons"], list)
        for r in d[layer]["reasons"]:
            assert {"code", "message", "value", "threshold"} <= set(r)
    assert isinstance(d["identity"]["centroid_similarity"], float)
    assert isinstance(d["identity"]["nearest_similarity"], float)
    for key in ("sharpness", "texture", "texture_ratio", "cast", "clipped", "interocular_ratio"):
        assert isinstance(d["realism"][key], float), key
    for key in ("eye_line", "head_height", "head_ratio", "colour_temperature_k"):
        assert isinstance(d["context"][key], float), key
    assert "circle_margins" in d["context"]


def test_verdict_is_worst_layer(reference):
    report = review_image(FACES / "p02_img47.jpg", reference)
    order = ("pass", "warn", "fail")
    assert report.verdict == max((report.identity.verdict, report.realism.verdict, report.context.verdict), key=order.index)


def test_review_many_keeps_order(reference):
    paths = [FACES / HELD_OUT, FACES / "p04_img30.jpg", FACES / "img11_reflection.jpg"]
    reports = review_many(paths, reference, preset="linkedin", workers=2)
    assert [r.file for r in reports] == [str(p) for p in paths]
    assert [r.identity.verdict for r in reports] == ["pass", "fail", "pass"]
    assert all(isinstance(r, ReviewReport) for r in reports)


def test_colour_helpers():
    assert delta_e76((50, 0, 0), (50, 3, 4)) == pytest.approx(5.0)
    assert 6000 < cct_mccamy((255, 255, 255)) < 7000  # sRGB white is D65 (~6500 K)
    assert cct_mccamy((255, 180, 110)) < 4000  # warm
    assert cct_mccamy((170, 200, 255)) > 8000  # cool


def test_thresholds_are_ordered():
    t = ReviewThresholds()
    assert t.identity_fail < t.identity_pass
    assert t.near_copy_warn <= t.near_copy_fail
    assert t.sharpness_fail < t.sharpness_warn
    assert t.texture_fail_ratio < t.texture_warn_ratio
    assert t.cast_warn < t.cast_fail and t.clipped_warn < t.clipped_fail
    assert t.eye_line_warn < t.eye_line_fail
    assert t.delta_e_warn < t.delta_e_fail
