"""Head-and-shoulders framing and the Review previews, on real photos with the real face models."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipeline.framing import (
    SPECS, Crop, FramingSpec, bio_crop, circle_safety, crop_image, directory_thumbnail, email_avatar,
    head_and_shoulders_box, linkedin_circle, preview_sheet, to_full_size,
)
from pipeline.intake import load_full, open_photo

FACES = Path(__file__).resolve().parents[1].parent / "shared" / "testdata" / "faces"
PHOTOS = ["p01_img1.jpg", "p04_img30.jpg", "p05_img35.jpg", "p02_img8.jpg", "p06_img20.jpg"]
SPEC_NAMES = list(SPECS)
TOL = 0.03


@pytest.fixture(scope="module")
def analysed(analyzer, tmp_path_factory):
    """name -> (Photo, FaceAnalysis), each analysed once. ``canvas:<name>`` is the photo pasted in
    the middle of a grey canvas three times its size, so that the ideal box fits."""
    cache: dict = {}
    folder = tmp_path_factory.mktemp("framing")

    def get(name: str):
        if name not in cache:
            if name.startswith("canvas:"):
                src = Image.open(FACES / name.split(":", 1)[1]).convert("RGB")
                canvas = Image.new("RGB", (src.width * 3, src.height * 3), (128, 128, 128))
                canvas.paste(src, (src.width, src.height))
                path = folder / name.replace(":", "_")
                canvas.save(path, quality=95)
            else:
                path = FACES / name
            photo = open_photo(path)
            analysis = analyzer.analyze(photo.rgb, with_mask=True)
            assert analysis.primary is not None, name
            cache[name] = (path, photo, analysis)
        return cache[name]

    return get


def _placement(crop: Crop):
    g = crop.geometry
    x0, y0, x1, y1 = crop.box
    return (g.eye_y - y0) / crop.height, (g.eye_x - x0) / crop.width, g.head / crop.height


def _assert_exact_aspect(crop: Crop):
    p, q = crop.spec.ratio()
    assert crop.width * q == crop.height * p, crop.box
    x0, y0, x1, y1 = crop.box
    assert 0 <= x0 < x1 <= crop.image_size[0] and 0 <= y0 < y1 <= crop.image_size[1]


@pytest.mark.parametrize("spec", SPEC_NAMES)
@pytest.mark.parametrize("name", PHOTOS)
def test_crop_places_the_eyes_on_the_eye_line(analysed, name, spec):
    _, photo, analysis = analysed(name)
    crop = head_and_shoulders_box(analysis.primary, analysis.image_size, SPECS[spec], analysis.person_mask)
    _assert_exact_aspect(crop)
    eye_line, eye_centre, _ = _placement(crop)
    if crop.clamped:
        # Never silent: the report says what was achieved, and it is what the box shows.
        assert crop.shortfall["eye_line"] == pytest.approx(eye_line, abs=0.002)
        assert crop.shortfall["eye_centre"] == pytest.approx(eye_centre, abs=0.002)
        assert crop.shortfall["overflow"]
        dx, dy = crop.shortfall["shift"]
        if abs(dy) <= TOL * crop.height:  # shrunk about the eyes, not shifted: placement still exact
            assert abs(eye_line - SPECS[spec].eye_line) <= TOL
        if abs(dx) <= TOL * crop.width:
            assert abs(eye_centre - 0.5) <= TOL
    else:
        assert abs(eye_line - SPECS[spec].eye_line) <= TOL
        assert abs(eye_centre - 0.5) <= TOL


@pytest.mark.parametrize("spec", SPEC_NAMES)
@pytest.mark.parametrize("name", PHOTOS)
def test_crop_with_room_meets_the_spec_exactly(analysed, name, spec):
    _, _, analysis = analysed("canvas:" + name)
    s = SPECS[spec]
    crop = head_and_shoulders_box(analysis.primary, analysis.image_size, s, analysis.person_mask)
    _assert_exact_aspect(crop)
    assert not crop.clamped, crop.shortfall
    eye_line, eye_centre, head = _placement(crop)
    assert abs(eye_line - s.eye_line) <= TOL
    assert abs(eye_centre - 0.5) <= TOL
    assert abs(head - s.head_height) <= TOL
    assert crop.geometry.crown_source == "mask"
    if spec == "linkedin":
        assert circle_safety(crop, analysis.primary, analysis.person_mask)["safe"]


@pytest.mark.parametrize("name", PHOTOS[:3])
def test_crown_falls_back_to_landmarks_without_a_mask(analysed, name):
    _, _, analysis = analysed("canvas:" + name)
    crop = head_and_shoulders_box(analysis.primary, analysis.image_size, "linkedin")
    g = crop.geometry
    assert g.crown_source == "landmarks"
    assert g.crown_y == pytest.approx(g.eye_y - (g.chin_y - g.eye_y))
    _assert_exact_aspect(crop)


@pytest.mark.parametrize("name", ["p04_img30.jpg", "p05_img35.jpg"])
def test_face_at_the_bottom_edge_is_clamped_and_not_circle_safe(analysed, analyzer, tmp_path, name):
    """The photo is cut at the chin and pasted at the bottom of a tall canvas."""
    path, photo, analysis = analysed(name)
    chin_full = analysis.primary.landmarks["chin"][1] / photo.scale
    src = load_full(path)
    cut = src.crop((0, 0, src.width, int(chin_full)))
    canvas = Image.new("RGB", (src.width, cut.height * 2), (128, 128, 128))
    canvas.paste(cut, (0, canvas.height - cut.height))
    out = tmp_path / "bottom.jpg"
    canvas.save(out, quality=95)
    ph = open_photo(out)
    an = analyzer.analyze(ph.rgb, with_mask=True)
    crop = head_and_shoulders_box(an.primary, an.image_size, "linkedin", an.person_mask)
    assert crop.clamped
    assert crop.shortfall["overflow"].get("bottom", 0) > 0
    _assert_exact_aspect(crop)
    safety = circle_safety(crop, an.primary, an.person_mask)
    assert not safety["safe"]
    assert "chin" in safety["cut_by_photo"] or safety["margins"]["chin"] < 0.05


def test_spec_table_is_read_only():
    with pytest.raises(TypeError):
        SPECS["linkedin"] = FramingSpec(1.0, 0.5, 0.5)  # type: ignore[index]
    assert SPECS["linkedin"].ratio() == (1, 1) and SPECS["web-bio"].ratio() == (4, 5)


@pytest.mark.parametrize("name", PHOTOS[:3])
def test_crop_scales_from_analysis_to_full_size(analysed, name):
    path, photo, analysis = analysed(name)
    crop = head_and_shoulders_box(analysis.primary, analysis.image_size, "web-bio", analysis.person_mask)
    full = to_full_size(crop, photo)
    assert full.image_size == photo.original_size
    _assert_exact_aspect(full)
    for a, b in zip(full.box, crop.box):
        assert a == pytest.approx(b / photo.scale, abs=3 / photo.scale + 5)
    img = load_full(path)
    assert crop_image(img, crop).size == (full.width, full.height)


PREVIEWS = [
    ("linkedin_400", lambda img, c: linkedin_circle(img, c["linkedin"], 400), (400, 400), True),
    ("linkedin_48", lambda img, c: linkedin_circle(img, c["linkedin"], 48), (48, 48), True),
    ("linkedin_transparent", lambda img, c: linkedin_circle(img, c["linkedin"], 400, background=None), (400, 400), True),
    ("directory", lambda img, c: directory_thumbnail(img, c["directory"], 128), (128, 128), False),
    ("bio", lambda img, c: bio_crop(img, c["web-bio"], 320), (320, 400), False),
    ("email", lambda img, c: email_avatar(img, c["avatar"], 96), (96, 96), True),
]


@pytest.mark.parametrize("label,render,size,circle", PREVIEWS, ids=[p[0] for p in PREVIEWS])
def test_previews_have_exact_sizes_and_background_corners(analysed, label, render, size, circle):
    path, photo, analysis = analysed("p04_img30.jpg")
    crops = {s: head_and_shoulders_box(analysis.primary, analysis.image_size, s, analysis.person_mask) for s in SPECS}
    out = render(load_full(path), crops)
    assert out.size == size
    if circle:
        px = np.asarray(out)
        w, h = size
        for x, y in [(0, 0), (w - 1, 0), (0, h - 1), (w - 1, h - 1)]:
            if out.mode == "RGBA":
                assert px[y, x, 3] == 0
            else:
                assert tuple(px[y, x]) == (255, 255, 255)
        assert px[h // 2, w // 2, :3].tolist() != [255, 255, 255]


@pytest.mark.parametrize("name", ["p01_img1.jpg", "p05_img35.jpg"])
def test_preview_sheet_renders(analysed, name):
    path, photo, analysis = analysed(name)
    sheet = preview_sheet(load_full(path), analysis.primary, analysis.person_mask, analysis.image_size)
    assert sheet.mode == "RGB" and sheet.width > 400 + 320 and sheet.height > 400
    # Also on the analysis image itself, without a mask.
    small = preview_sheet(Image.fromarray(photo.rgb), analysis.primary)
    assert small.size == sheet.size
