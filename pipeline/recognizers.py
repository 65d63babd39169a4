"""Second face recognizers: an independent opinion on identity for the review step.

The default (SFace, in :mod:`pipeline.faces`) scores every result. A second recognizer with
different training data and architecture catches the cases where one model is fooled: the review
shows both scores and flags a disagreement.

- ``dlib``: dlib's ResNet face descriptor, with its 5-point aligner, from the
  ``face_recognition_models`` package (models CC0, dlib Boost licence: commercial use is fine). It
  ships in the wheels, so it works offline; it is the default second recognizer. dlib (``dlib-bin``)
  aligns the face chip; the network itself runs in torch (:mod:`pipeline.dlib_net`, the same
  weights read from dlib's file, descriptors equal to dlib's within 1e-6) because dlib-bin's own
  forward pass takes ~110 ms and holds the GIL, against ~8 ms in torch.
- ``insightface``: ArcFace (buffalo_l), only when its models are already on disk and
  ``HEADSHOT_SECOND_RECOGNIZER=insightface`` asks for it (its pretrained models are non-commercial).

Each recognizer embeds the face the default analyzer found (its box), so both judge the same face.
"""
from __future__ import annotations

import importlib.util
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

log = logging.getLogger(__name__)

# dlib descriptors, Euclidean distance of a held-out photo to the mean descriptor of the person's
# other photos, on the 33 shared real photos of 7 people: same person <= 0.358 (median 0.288),
# another person >= 0.492 (median 0.90). Pairwise: same <= 0.454, different >= 0.511, so dlib's usual
# 0.6 would have matched two different people here. The line sits between the two groups.
DLIB_MATCH_DISTANCE = 0.42
# ArcFace cosine to the centroid: insightface's own examples use about 0.3-0.4. Not calibrated
# here (no models on this machine); treat its verdicts with care.
ARCFACE_MATCH_COSINE = 0.35


@dataclass(frozen=True)
class Comparison:
    value: float  # the recognizer's own measure (distance or cosine)
    metric: str  # "distance" (lower is closer) or "cosine" (higher is closer)
    threshold: float
    match: bool


class SecondRecognizer(Protocol):
    name: str

    def embed(self, rgb: np.ndarray, box) -> np.ndarray | None: ...

    def compare(self, embedding: np.ndarray, centroid: np.ndarray) -> Comparison: ...

    def centroid(self, embeddings: np.ndarray) -> np.ndarray: ...


def _dlib_models() -> Path | None:
    spec = importlib.util.find_spec("face_recognition_models")
    # Located without importing the package: its __init__ needs pkg_resources (setuptools).
    if spec is None or not spec.submodule_search_locations:
        return None
    root = Path(next(iter(spec.submodule_search_locations))) / "models"
    return root if (root / "dlib_face_recognition_resnet_model_v1.dat").is_file() else None


class DlibRecognizer:
    name = "dlib ResNet descriptor"

    def __init__(self, models: Path):
        import dlib

        from .dlib_net import CHIP_SIZE, DlibResNet

        self._dlib = dlib
        self._chip_size = CHIP_SIZE
        self._aligner = dlib.shape_predictor(str(models / "shape_predictor_5_face_landmarks.dat"))
        weights = models / "dlib_face_recognition_resnet_model_v1.dat"
        try:
            self._torch_net = DlibResNet.load(weights)
            self._net = None
        except Exception as exc:  # a model file this reader does not know: dlib's own (slow) path
            log.warning("dlib model not convertible to torch (%s: %s); using dlib's forward pass",
                        type(exc).__name__, exc)
            self._torch_net = None
            self._net = dlib.face_recognition_model_v1(str(weights))
        self._lock = threading.Lock()  # dlib's aligner and net are shared by the review's threads

    def embed(self, rgb: np.ndarray, box) -> np.ndarray | None:
        x, y, w, h = (int(round(v)) for v in box[:4])
        if w < 8 or h < 8:
            return None
        rect = self._dlib.rectangle(x, y, x + w, y + h)
        img = np.ascontiguousarray(rgb[..., :3], dtype=np.uint8)
        with self._lock:
            shape = self._aligner(img, rect)
            if self._torch_net is None:
                return np.asarray(self._net.compute_face_descriptor(img, shape, 0), dtype=np.float32)
            # The chip compute_face_descriptor(img, shape, 0) would make (150 px, padding 0.25).
            chip = np.asarray(self._dlib.get_face_chip(img, shape, self._chip_size, 0.25), dtype=np.uint8)
        return self._torch_net.descriptors(chip)[0]

    def centroid(self, embeddings: np.ndarray) -> np.ndarray:
        return np.asarray(embeddings, np.float32).mean(axis=0)

    def compare(self, embedding: np.ndarray, centroid: np.ndarray) -> Comparison:
        d = float(np.linalg.norm(embedding - centroid))
        return Comparison(d, "distance", DLIB_MATCH_DISTANCE, d <= DLIB_MATCH_DISTANCE)


class InsightfaceRecognizer:
    name = "insightface ArcFace (buffalo_l)"

    def __init__(self):
        from .faces import FaceAnalyzer

        self._analyzer = FaceAnalyzer(backend="insightface")

    def embed(self, rgb: np.ndarray, box) -> np.ndarray | None:
        rows = self._analyzer.detect(rgb)
        return self._analyzer.embed(rgb, rows[0]) if len(rows) else None

    def centroid(self, embeddings: np.ndarray) -> np.ndarray:
        m = np.asarray(embeddings, np.float32).mean(axis=0)
        return m / max(float(np.linalg.norm(m)), 1e-8)

    def compare(self, embedding: np.ndarray, centroid: np.ndarray) -> Comparison:
        e = embedding / max(float(np.linalg.norm(embedding)), 1e-8)
        c = float(e @ centroid)
        return Comparison(c, "cosine", ARCFACE_MATCH_COSINE, c >= ARCFACE_MATCH_COSINE)


_CACHE: dict[str, tuple] = {}
_CACHE_LOCK = threading.Lock()


def second_recognizer() -> tuple[SecondRecognizer | None, str]:
    """The second recognizer this deployment has (cached per process: models, no user data), or
    (None, why not)."""
    want = os.environ.get("HEADSHOT_SECOND_RECOGNIZER", "dlib").strip().lower()
    with _CACHE_LOCK:
        if want not in _CACHE:
            _CACHE[want] = _load(want)
        return _CACHE[want]


def _load(want: str) -> tuple[SecondRecognizer | None, str]:
    if want in ("none", "off", ""):
        return None, "second recognizer turned off (HEADSHOT_SECOND_RECOGNIZER)"
    if want == "insightface":
        try:
            r = InsightfaceRecognizer()
            return r, r.name
        except Exception as exc:  # not installed, or models not on disk: never downloaded
            return None, f"insightface unavailable: {exc}"
    if want != "dlib":
        return None, f"unknown second recognizer {want!r}; use dlib, insightface or none"
    models = _dlib_models()
    if models is None:
        return None, "second recognizer unavailable: install dlib-bin and face_recognition_models"
    try:
        r = DlibRecognizer(models)
    except ImportError as exc:
        return None, f"second recognizer unavailable: {exc}"
    return r, r.name
