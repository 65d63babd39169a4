"""Server-side checks of what API clients send (gradio_client, MCP, curl), not only the browser.

The browser's widgets keep values in range, but any client can post anything. Every handler that
turns a value into work (steps, image counts, seeds, model ids) passes it through here first.
Nothing a client sends may make the server read an arbitrary path or fetch an arbitrary URL: a base
model is a Hub repo id or the one folder this server was configured with.
"""
from __future__ import annotations

import math

import gradio as gr

from pipeline.generate import default_base_model
from pipeline.hub import is_hub_id

MAX_TRAIN_STEPS = 4000  # 30-ish minutes on an H100; more is a mistake or abuse on a shared Space
MAX_RANK = 128
MAX_IMAGES = 4  # per generation (the Images slider's maximum)
MAX_UPLOADS = 50  # images reviewed or exported in one request
MAX_SEED = 2**63 - 1
MAX_TEXT = 2000  # characters in a free-text field (extra prompt words, negatives, a hand-written prompt)


def whole(value, name: str, low: int, high: int, default: int | None = None) -> int | None:
    """An integer in [low, high]; blank gives ``default``. Floats must be whole numbers."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return default
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise gr.Error(f"{name} must be a whole number.") from None
    if not math.isfinite(number) or number != int(number):
        raise gr.Error(f"{name} must be a whole number.")
    if not low <= int(number) <= high:
        raise gr.Error(f"{name} must be between {low} and {high}.")
    return int(number)


def base_model(ref) -> str:
    """A Hub repo id (``owner/name``), or exactly the base model this server is configured with."""
    ref = str(ref or "").strip()
    if not ref or ref == default_base_model():
        return ref or default_base_model()
    if is_hub_id(ref):
        return ref
    raise gr.Error("Enter a Hugging Face model id like 'owner/name'. Folders on the server are not "
                   "available, except the base model it was configured with.")


def text(value, name: str, limit: int = MAX_TEXT) -> str:
    value = "" if value is None else str(value)
    if len(value) > limit:
        raise gr.Error(f"{name} is longer than {limit} characters.")
    if "\x00" in value:
        raise gr.Error(f"{name} contains a NUL character.")
    return value
