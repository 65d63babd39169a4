"""The capture-set gate: per-photo checks, set-level checks, selection and coaching advice."""
from __future__ import annotations

import functools
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterable, Sequence

import cv2
import numpy as np
from tqdm.auto import tqdm

from ..faces import FaceAnalyzer
from ..intake import IntakeLimits
from .photo import check_photo, pose_bin
from .report import (ACCEPT, ADVICE, DEFAULT_THRESHOLDS, POSE_BINS, REJECT, WARN, CaptureReport, CaptureThresholds,
                     PhotoCheck, Reason, SetCheck)
from .setcheck import check_set

__all__ = ["ACCEPT", "ADVICE", "DEFAULT_THRESHOLDS", "POSE_BINS", "REJECT", "WARN", "CaptureReport",
           "CaptureThresholds", "PhotoCheck", "Reason", "SetCheck", "check_capture", "check_photo", "check_set",
           "default_analyzer", "expand_sources", "pose_bin", "warm_up"]


@functools.lru_cache(maxsize=1)
def default_analyzer() -> FaceAnalyzer:
    """One analyzer per process: it holds models only, never user data."""
    return FaceAnalyzer()


def warm_up() -> None:
    """Load the face models now, so that the first user does not wait for them."""
    default_analyzer().analyze(np.zeros((64, 64, 3), np.uint8))


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
