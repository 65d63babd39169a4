"""FaceAnalyzer on real photos: detection, landmarks, pose conventions, embedding, person mask."""
from __future__ import annotations

import threading

import numpy as np
import pytest
from PIL import Image

from pipeline.faces import FaceAnalyzer, cosine
from pipeline.intake import open_photo


def _rotate_clockwise(rgb: np.ndarray, degrees: float) -> np.ndarray:
    """Rotate clockwise in the image (PIL's positive angle is counter-clockwise)."""
    img = Image.fromarray(rgb).rotate(-degrees, expand=True, fillcolor=(128, 128, 128),
                                      resample=Image.Resampling.BICUBIC)
    return np.asarray(img)


@pytest.fixture(scope="session")
def public_domain_faces(analyzer, astronaut_rgb, grace_hopper_rgb):
    """(name, rgb, analysis with person mask) for the two public-domain portraits, analysed once."""
    return {
        "astronaut": (astronaut_rgb, analyzer.analyze(astronaut_rgb, with_mask=True)),
        "grace_hopper": (grace_hopper_rgb, analyzer.analyze(grace_hopper_rgb, with_mask=True)),
    }


@pytest.mark.parametrize("name", ["astronaut", "grace_hopper"])
def test_one_face_with_plausible_landmarks(public_domain_faces, name):
    rgb, analysis = public_domain_faces[name]
    assert analysis.image_size == (rgb.shape[1], rgb.shape[0])
    assert len(analysis.faces) == 1, [f.box for f in analysis.faces]
    face = analysis.primary
    x, y, w, h = face.box
    assert 0 <= x and 0 <= y and x + w <= rgb.shape[1] + 2 and y + h <= rgb.shape[0] + 2
    assert face.score >= 0.7
    lm = face.landmarks
    for key in ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right"):
        px, py = lm[key]
        assert x - 0.1 * w <= px <= x + 1.1 * w and y - 0.1 * h <= py <= y + 1.1 * h, (key, lm[key], face.box)
    eye_y = (lm["left_eye"][1] + lm["right_eye"][1]) / 2
    mouth_y = (lm["mouth_left"][1] + lm["mouth_right"][1]) / 2
    assert eye_y < lm["nose"][1] < mouth_y, lm
    # left_eye/right_eye are named as seen in the image.
    assert lm["left_eye"][0] < lm["right_eye"][0], lm
    assert lm["mouth_left"][0] < lm["mouth_right"][0], lm
    assert lm["left_eye"][0] < lm["nose"][0] < lm["right_eye"][0], lm
    # The face mesh adds chin and forehead: forehead above the eyes, chin below the mouth.
    assert lm["forehead"][1] < eye_y and lm["chin"][1] > mouth_y, lm
    assert face.interocular > 0.2 * w
    assert 0 < face.eye_line < 1 and face.eye_line == pytest.approx(eye_y / rgb.shape[0])
    # Upright, frontal portraits.
    assert abs(face.roll) < 8 and abs(face.yaw) < 10 and face.pitch is not None and abs(face.pitch) < 15
    assert face.mesh is not None and face.mesh.shape == (478, 3)


@pytest.mark.parametrize("name", ["astronaut", "grace_hopper"])
def test_embedding_is_128d_unit_norm(public_domain_faces, name):
    emb = public_domain_faces[name][1].primary.embedding
    assert emb.shape == (128,)
    assert np.all(np.isfinite(emb))
    assert float(np.linalg.norm(emb)) == pytest.approx(1.0, abs=1e-4)


def test_different_people_embed_apart(public_domain_faces, thresholds):
    a = public_domain_faces["astronaut"][1].primary.embedding
    b = public_domain_faces["grace_hopper"][1].primary.embedding
    assert cosine(a, b) < thresholds.identity_link


@pytest.mark.parametrize("name", ["astronaut", "grace_hopper"])
@pytest.mark.parametrize("degrees", [15, -15])
def test_roll_follows_image_rotation(analyzer, public_domain_faces, name, degrees, thresholds):
    """roll is positive for a clockwise tilt in the image (faces.py's convention)."""
    rgb, analysis = public_domain_faces[name]
    upright = analysis.primary
    rotated = analyzer.analyze(_rotate_clockwise(rgb, degrees))
    assert len(rotated.faces) == 1
    tilted = rotated.primary
    assert abs(upright.roll) < 5
    assert tilted.roll - upright.roll == pytest.approx(degrees, abs=3.0), (upright.roll, tilted.roll)
    assert abs(tilted.roll) == pytest.approx(15, abs=4.0)
    # Same person after the tilt.
    assert cosine(upright.embedding, tilted.embedding) >= thresholds.identity_link


def _turned_photos() -> list[str]:
    return ["p05_img34.jpg", "p03_img61.jpg", "p03_img16.jpg"]


@pytest.mark.parametrize("name", _turned_photos())
def test_yaw_sign_flips_with_a_mirror_image(analyzer, faces_dir, name):
    rgb = open_photo(faces_dir / name).rgb
    face = analyzer.analyze(rgb).primary
    assert abs(face.yaw) > 8, f"{name} is meant to be a turned face; yaw={face.yaw:.1f}"
    mirrored = analyzer.analyze(np.ascontiguousarray(rgb[:, ::-1])).primary
    assert np.sign(mirrored.yaw) == -np.sign(face.yaw), (face.yaw, mirrored.yaw)
    assert mirrored.yaw == pytest.approx(-face.yaw, abs=max(4.0, 0.35 * abs(face.yaw)))
    # Roll mirrors too.
    assert mirrored.roll == pytest.approx(-face.roll, abs=3.0)


@pytest.mark.parametrize("name", _turned_photos())
def test_yaw_sign_agrees_with_nose_offset(analyzer, faces_dir, name):
    """Positive yaw = turned towards the image right, i.e. the nose sits right of the eye midpoint.

    The nose point comes from the detector and the eyes from the mesh irises, so this is an
    independent check of the mesh-based yaw's sign.
    """
    face = analyzer.analyze(open_photo(faces_dir / name).rgb).primary
    lm = face.landmarks
    nose_offset = lm["nose"][0] - (lm["left_eye"][0] + lm["right_eye"][0]) / 2
    assert abs(nose_offset) > 0.03 * face.interocular
    assert np.sign(nose_offset) == np.sign(face.yaw), (nose_offset, face.yaw)


@pytest.mark.parametrize("name", ["astronaut", "grace_hopper"])
def test_person_mask(public_domain_faces, name):
    rgb, analysis = public_domain_faces[name]
    mask = analysis.person_mask
    assert mask is not None
    assert mask.shape == rgb.shape[:2]
    assert mask.dtype == np.float32
    assert float(mask.min()) >= 0.0 and float(mask.max()) <= 1.0
    face = analysis.primary
    cx, cy = int(face.box[0] + face.box[2] / 2), int(face.box[1] + face.box[3] / 2)
    assert mask[cy, cx] > 0.5
    # A top corner on the side away from the face is background in both portraits.
    h, w = mask.shape
    corner_x = 2 if cx > w / 2 else w - 3
    region = mask[0:max(4, h // 20), max(0, corner_x - w // 20):corner_x + w // 20 + 1]
    assert float(region.mean()) < 0.2, float(region.mean())
    # Most of the face box is person.
    x, y, bw, bh = (int(v) for v in face.box)
    assert float(mask[y:y + bh, x:x + bw].mean()) > 0.6


def test_analyze_without_mask_and_with_no_face(analyzer):
    import skimage.data

    coffee = skimage.data.coffee()
    analysis = analyzer.analyze(coffee)
    assert analysis.faces == [] and analysis.primary is None and analysis.person_mask is None
    assert analyzer.detect(coffee).shape == (0, 15)


def test_multiple_faces_largest_first(analyzer, faces_dir):
    analysis = analyzer.analyze(open_photo(faces_dir / "selfie-many-people.jpg").rgb)
    assert len(analysis.faces) >= 3
    areas = [f.area for f in analysis.faces]
    assert areas == sorted(areas, reverse=True)
    # Only the primary face gets the mesh (and pitch).
    assert all(f.mesh is None and f.pitch is None for f in analysis.faces[1:])
    for f in analysis.faces:
        assert f.embedding.shape == (128,)


def test_unknown_backend_raises_value_error():
    with pytest.raises(ValueError, match="bogus"):
        FaceAnalyzer("bogus")


def test_insightface_backend_without_models_raises_clear_runtime_error(tmp_path):
    with pytest.raises(RuntimeError) as info:
        FaceAnalyzer("insightface", insightface_root=tmp_path / "no-models-here")
    message = str(info.value)
    # Either insightface is not installed, or its (non-commercial) models are not on disk.
    assert "insightface" in message and ("pip install" in message or "not on disk" in message), message


@pytest.mark.timeout(120)  # a deadlock in the model pool must fail, not hang
def test_concurrent_analysis_gives_identical_results(faces_dir):
    """Two threads on one analyzer at once (each gets its own model instances) agree exactly."""
    analyzer = FaceAnalyzer()  # fresh: both threads build their models concurrently as well
    rgb = open_photo(faces_dir / "p02_img49.jpg").rgb
    results: list = [None, None]
    errors: list = []
    barrier = threading.Barrier(2)

    def work(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            results[i] = [analyzer.analyze(rgb, with_mask=(k == 0)) for k in range(2)]
        except Exception as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    reference = analyzer.analyze(rgb).primary
    for runs in results:
        assert runs is not None
        for analysis in runs:
            assert len(analysis.faces) == 1
            assert np.array_equal(analysis.primary.embedding, reference.embedding)
            assert analysis.primary.yaw == reference.yaw and analysis.primary.roll == reference.roll
    assert np.array_equal(results[0][0].person_mask, results[1][0].person_mask)
