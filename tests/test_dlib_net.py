"""pipeline.dlib_net: dlib's ResNet face descriptor read from its .dat file and run in torch must give
dlib's own descriptors (real photos of different people, real dlib models), and refuse bad files."""
from __future__ import annotations

import dlib  # a requirement (dlib-bin): its absence is a failure, not a skip
import numpy as np
import pytest

from pipeline.dlib_net import DESCRIPTOR_SIZE, DlibResNet, parse
from pipeline.recognizers import _dlib_models

from .conftest import FACES, upright

# One photo per person (p01..p07): different faces, sizes, lighting.
PHOTOS = ["p01_img1.jpg", "p02_img47.jpg", "p03_img17.jpg", "p04_img29.jpg", "p05_img34.jpg",
          "p06_img20.jpg", "p07_img24.jpg"]
# Measured: max |torch - dlib| = 3.3e-7 on these chips (float32 vs float32, descriptor norms ~1.5).
TOLERANCE = 1e-5

MODELS = _dlib_models()
assert MODELS is not None, "face_recognition_models (a requirement) is not installed"
NET_PATH = MODELS / "dlib_face_recognition_resnet_model_v1.dat"


@pytest.fixture(scope="module")
def dlib_net():
    return dlib.face_recognition_model_v1(str(NET_PATH))


@pytest.fixture(scope="module")
def torch_net() -> DlibResNet:
    return DlibResNet.load(NET_PATH)


@pytest.fixture(scope="module")
def faces():
    """(name, image, 5-point shape, 150x150 chip) per photo, aligned the way the app aligns."""
    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(str(MODELS / "shape_predictor_5_face_landmarks.dat"))
    out = []
    for name in PHOTOS:
        img = np.asarray(upright(FACES / name, max_side=800))  # smaller: the detector is the slow part
        dets = detector(img, 1)
        assert len(dets) >= 1, name
        box = max(dets, key=lambda r: r.area())
        shape = predictor(img, box)
        out.append((name, img, shape, np.asarray(dlib.get_face_chip(img, shape, 150, 0.25))))
    return out


def test_torch_matches_dlib_per_chip(faces, dlib_net, torch_net):
    worst = 0.0
    for name, _, _, chip in faces:
        ref = np.asarray(dlib_net.compute_face_descriptor(chip), dtype=np.float32)
        got = torch_net.descriptors(chip[None])
        assert got.shape == (1, DESCRIPTOR_SIZE) and got.dtype == np.float32
        diff = float(np.abs(got[0] - ref).max())
        assert diff < TOLERANCE, (name, diff)
        worst = max(worst, diff)
    print(f"max |torch - dlib| over {len(faces)} people: {worst:.2e}")


def test_chip_route_equals_dlibs_own_alignment(faces, dlib_net, torch_net):
    # The app called compute_face_descriptor(img, shape, 0); get_face_chip(img, shape, 150, 0.25) is the
    # same crop, so descriptors of the chips are what the app got before.
    for name, img, shape, chip in faces:
        from_img = np.asarray(dlib_net.compute_face_descriptor(img, shape, 0), dtype=np.float32)
        from_chip = np.asarray(dlib_net.compute_face_descriptor(chip), dtype=np.float32)
        np.testing.assert_allclose(from_img, from_chip, rtol=0, atol=1e-6, err_msg=name)
        assert np.abs(torch_net.descriptors(chip)[0] - from_img).max() < TOLERANCE, name


def test_batch_equals_single_and_people_are_apart(faces, torch_net):
    chips = np.stack([chip for *_, chip in faces])
    batch = torch_net.descriptors(chips)
    singles = np.concatenate([torch_net.descriptors(c[None]) for c in chips])
    assert batch.shape == (len(faces), DESCRIPTOR_SIZE)
    np.testing.assert_allclose(batch, singles, rtol=0, atol=TOLERANCE)
    # Seven different people: every pair beyond dlib's usual 0.6 "same person" line.
    d = np.linalg.norm(batch[:, None] - batch[None], axis=-1)
    assert d[~np.eye(len(faces), dtype=bool)].min() > 0.6


def test_load_is_cached_and_bad_input_is_refused(torch_net):
    assert DlibResNet.load(NET_PATH) is torch_net
    assert torch_net.descriptors(np.zeros((0, 150, 150, 3), np.uint8)).shape == (0, DESCRIPTOR_SIZE)
    with pytest.raises(ValueError):
        torch_net.descriptors(np.zeros((1, 112, 112, 3), np.uint8))
    with pytest.raises(ValueError):
        torch_net.descriptors(np.zeros((1, 150, 150, 3), np.float32))


@pytest.fixture(scope="module")
def model_bytes() -> bytes:
    return NET_PATH.read_bytes()


@pytest.mark.parametrize("cut", [0, 1, 20, 0x100, 0x130, 0x160, 1_000_000, -1000, -1])
def test_truncated_file_is_refused(model_bytes, cut):
    with pytest.raises(ValueError):
        parse(model_bytes[:cut])


def test_garbage_and_wrong_architecture_are_refused(model_bytes, tmp_path):
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError):
        parse(rng.integers(0, 256, 100_000, dtype=np.uint8).tobytes())
    with pytest.raises(ValueError, match="not a dlib"):
        parse(model_bytes.replace(b"loss_metric_2", b"loss_metric_3", 1))
    # A tag where the network has a layer: the structure is no longer anet_type.
    start = model_bytes.index(b"\x01\x02", 0x1D)
    with pytest.raises(ValueError, match="anet_type"):
        parse(model_bytes[:start] + b"\x01\x01" + model_bytes[start + 2:])
    # A 3x3 con where the stem's 7x7 belongs.
    stem = model_bytes.index(b"con_4") + len(b"con_4") + 11 + 4 * 4736  # tensor header, 4736 floats
    assert model_bytes[stem:stem + 6] == b"\x01\x20\x01\x07\x01\x07"
    with pytest.raises(ValueError):
        parse(model_bytes[:stem] + b"\x01\x20\x01\x03\x01\x03" + model_bytes[stem + 6:])
    # The stem padded by 3: the same layers, other numbers.
    assert model_bytes[stem + 6:stem + 14] == b"\x01\x02\x01\x02\x01\x00\x01\x00"  # strides 2, padding 0
    with pytest.raises(ValueError, match="padding_y=3, expected 0"):
        parse(model_bytes[:stem + 10] + b"\x01\x03" + model_bytes[stem + 12:])
    bad = tmp_path / "bad.dat"
    bad.write_bytes(model_bytes[: len(model_bytes) // 2])
    with pytest.raises(ValueError):
        DlibResNet.load(bad)
    with pytest.raises(ValueError):
        DlibResNet.load(tmp_path / "missing.dat")


def test_review_recognizer_gives_dlibs_own_descriptor(faces, dlib_net):
    """The review's second recognizer (dlib aligns, torch runs the net) returns what dlib's
    compute_face_descriptor(img, shape, 0) returns for the same face box."""
    from pipeline.recognizers import DlibRecognizer

    rec = DlibRecognizer(MODELS)
    assert rec._torch_net is not None  # the fast path is the one in use
    for name, img, shape, _ in faces[:3]:
        r = shape.rect
        box = (r.left(), r.top(), r.width(), r.height())
        # the recognizer fits the 5 points inside the box it is given; so does the reference here
        refit = rec._aligner(img, dlib.rectangle(box[0], box[1], box[0] + box[2], box[1] + box[3]))
        want = np.asarray(dlib_net.compute_face_descriptor(img, refit, 0), dtype=np.float32)
        got = rec.embed(img, box)
        assert got.shape == (DESCRIPTOR_SIZE,)
        assert float(np.abs(got - want).max()) < 1e-5, name


def test_float_overflow_is_a_value_error():
    from pipeline.dlib_net import _Reader

    # mantissa 1 (0x01 0x01), exponent 1500 (0x02, little-endian 0xdc 0x05): finite in dlib's encoding
    # but beyond a double; it must be refused as a bad file, not raise OverflowError.
    with pytest.raises(ValueError, match="out of range"):
        _Reader(b"\x01\x01\x02\xdc\x05").read_float()


def test_review_recognizer_falls_back_to_dlib_for_an_unknown_file(monkeypatch, faces, dlib_net):
    """A model file the torch reader refuses (a future dlib layout, say) still works, through
    dlib's own forward pass."""
    from pipeline import dlib_net as module
    from pipeline.recognizers import DlibRecognizer

    def refuse(path):  # any failure of the torch path, not only a ValueError
        raise RuntimeError("unknown layout")

    monkeypatch.setattr(module.DlibResNet, "load", refuse)
    rec = DlibRecognizer(MODELS)
    assert rec._torch_net is None
    name, img, shape, _ = faces[0]
    r = shape.rect
    got = rec.embed(img, (r.left(), r.top(), r.width(), r.height()))
    refit = rec._aligner(img, dlib.rectangle(r.left(), r.top(), r.left() + r.width(), r.top() + r.height()))
    want = np.asarray(dlib_net.compute_face_descriptor(img, refit, 0), dtype=np.float32)
    assert np.array_equal(got, want)  # dlib's own forward pass, bit for bit
