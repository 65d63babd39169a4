"""What the benchmarks share: the shared test photos, timing, machine and version facts, and a clean
stdout for JSON."""
from __future__ import annotations

import contextlib
import os
import platform
import sys
import time
from pathlib import Path

# Real photos of seven people, in the team's shared folder beside the repository.
FACES_DIR = Path(__file__).resolve().parents[2] / "shared" / "testdata" / "faces"


def training_photos(n: int = 3) -> list[str]:
    """A few photos of one person (p01) for the GPU training runs."""
    return [str(p) for p in sorted(FACES_DIR.glob("p01_img1*.jpg"))[:n]]


def timed(fn, *args, **kwargs) -> tuple[float, object]:
    t0 = time.perf_counter()
    result = fn(*args, **kwargs)
    return time.perf_counter() - t0, result


def loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def machine() -> dict:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    u = platform.uname()
    return {
        "processor": platform.processor() or model,
        "cpu_model": model,
        "uname": f"{u.system} {u.node} {u.release} {u.version} {u.machine}",
        "platform": platform.platform(),
    }


def versions(*optional: str) -> dict:
    """Python, OpenCV, Pillow (and its JPEG codec), numpy, plus each optional module that imports."""
    import cv2
    import numpy as np
    import PIL
    from PIL import features

    out = {
        "python": platform.python_version(),
        "opencv": cv2.__version__,
        "pillow": PIL.__version__,
        "libjpeg": features.version("jpg"),
        "libjpeg_turbo": bool(features.check_feature("libjpeg_turbo")),
        "numpy": np.__version__,
    }
    for mod in optional:
        with contextlib.suppress(Exception):
            out[mod] = getattr(__import__(mod), "__version__", None)
    return out


def r(x: float) -> float:
    return round(float(x), 4)


@contextlib.contextmanager
def stdout_to_stderr():
    """Native libraries (TFLite, glog, c2pa) may write to fd 1; keep stdout for the JSON alone."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)
