"""Tiny diffusion pipelines saved once per test session (plain functions, not fixtures).

Use with a session-scoped tmp dir: ``tiny_sdxl_dir(tmp_path_factory)``. Each is built at most once
per process and reloads offline with ``from_pretrained(dir)``.
"""
from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

_BUILT: dict[str, Path] = {}


def _build(kind: str, tmp_path_factory) -> Path:
    if kind not in _BUILT:
        from pipeline.tiny import build_tiny_sd, build_tiny_sdxl

        out = Path(tmp_path_factory.mktemp(f"tiny_{kind}"))
        (build_tiny_sdxl if kind == "sdxl" else build_tiny_sd)(out, seed=0)
        _BUILT[kind] = out
    return _BUILT[kind]


def tiny_sdxl_dir(tmp_path_factory) -> Path:
    return _build("sdxl", tmp_path_factory)


def tiny_sd_dir(tmp_path_factory) -> Path:
    return _build("sd", tmp_path_factory)
