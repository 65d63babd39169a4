"""Start app.py in a subprocess on a free loopback port and stop it again.

Shared by the browser and API tests (``tests/test_app.py``) and ``benchmarks/load_bench.py``, so
both drive the app exactly as it is started in production: ``python app.py --port N``.
"""
from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Iterator, Mapping

REPO = Path(__file__).resolve().parents[1]


class AppStartError(RuntimeError):
    """app.py exited, or did not answer, before it was ready; the message ends with its log."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tiny_app_env(data_dir: Path, gradio_dir: Path, base_model: Path, **extra: str) -> dict[str, str]:
    """The environment of an app that trains and generates with a tiny pipeline at 64 px, offline."""
    return {"HEADSHOT_DATA_DIR": str(data_dir), "GRADIO_TEMP_DIR": str(gradio_dir),
            "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1", "HEADSHOT_BASE_MODEL": str(base_model),
            "HEADSHOT_IMAGE_SIZE": "64", "HEADSHOT_GEN_STEPS": "2", "HEADSHOT_TRAIN_RESOLUTION": "64", **extra}


@contextlib.contextmanager
def run_app(env: Mapping[str, str], log_path: Path, start_timeout_s: float = 120,
            stop_timeout_s: float = 15) -> Iterator[tuple[str, subprocess.Popen]]:
    """app.py with ``env`` added to this process's environment, its output in ``log_path``;
    yields (url, process) once the page answers, and terminates it on exit."""
    port = free_port()
    with open(log_path, "w+") as log_file:
        proc = subprocess.Popen([sys.executable, "app.py", "--port", str(port)], cwd=REPO,
                                env={**os.environ, **env}, stdout=log_file, stderr=subprocess.STDOUT, text=True)
        url = f"http://127.0.0.1:{port}/"
        try:
            deadline = time.time() + start_timeout_s
            while True:
                if proc.poll() is not None:
                    raise AppStartError("app.py exited early:\n" + Path(log_path).read_text()[-5000:])
                if time.time() > deadline:
                    raise AppStartError(f"app.py did not start within {start_timeout_s:.0f} s:\n"
                                        + Path(log_path).read_text()[-5000:])
                try:
                    urllib.request.urlopen(url, timeout=2)
                    break
                except OSError:
                    time.sleep(0.5)
            yield url, proc
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=stop_timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
