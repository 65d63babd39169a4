"""Names and small checks: constants, repo-name sanitising, Hub ids and revisions, offline check, the token."""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from .errors import HubAuthError, LoraNotFound

LORA_FILE = "pytorch_lora_weights.safetensors"  # == pipeline.train.LORA_FILE (checked by the tests)
TRAINING_JSON = "training.json"
README = "README.md"
UPLOAD_FILES = (LORA_FILE, TRAINING_JSON, README)  # upload order: weights first, card last
LORA_DOWNLOAD_PATTERNS = (LORA_FILE, TRAINING_JSON)
# SDXL base 1.0 is under the CreativeML Open RAIL++-M licence; a LoRA trained on it inherits its
# use restrictions, so the card carries the same licence by default.
DEFAULT_LICENSE = "openrail++"
CARD_TAGS = ["lora", "text-to-image", "stable-diffusion-xl", "diffusers", "headshot-studio"]
MAX_REPO_NAME = 96
TOKEN_ENV = "HF_TOKEN"
LOCAL_BASE = "(local folder)"

_NAME_BAD = re.compile(r"[^A-Za-z0-9._-]+")
_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")


def hub_offline() -> bool:
    """``HF_HUB_OFFLINE`` (or ``TRANSFORMERS_OFFLINE``) as set now, or as huggingface_hub read it."""
    from huggingface_hub import constants

    env = (os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or "").strip().lower()
    return env in ("1", "true", "yes", "on") or bool(constants.HF_HUB_OFFLINE)


def sanitize_repo_name(name: str) -> str:
    """A Hub-valid repo name: runs of characters outside ``[A-Za-z0-9._-]`` become ``-``; no ``--``
    or ``..``; no leading/trailing ``-._``; no ``.git`` suffix; at most 96 characters."""
    if not isinstance(name, str):
        raise ValueError(f"repo name must be a string, got {type(name).__name__}")
    out = _NAME_BAD.sub("-", name.strip())
    out = re.sub(r"-{2,}", "-", out)
    out = re.sub(r"\.{2,}", ".", out)
    out = out.strip("-._")
    if out.lower().endswith(".git"):
        out = out[:-4].rstrip("-._")
    out = out[:MAX_REPO_NAME].rstrip("-._")
    if not out:
        raise ValueError(f"repo name {name!r} has no usable characters (use letters, digits, '.', '_' or '-')")
    return out


def is_hub_id(ref: str) -> bool:
    """``owner/name`` shaped and valid for the Hub (an optional ``@revision`` must be split off first)."""
    return bool(_HUB_ID.match(ref)) and ".." not in ref and "--" not in ref


def _looks_like_path(ref: str) -> bool:
    # Same rule as pipeline.generate: anything that is not exactly "owner/name" (or that exists on
    # disk) is a local path.
    return (os.path.isabs(ref) or ref.startswith((".", "~")) or "\\" in ref
            or ref.count("/") != 1 or Path(ref).expanduser().exists())


def split_revision(ref: str) -> tuple[str, str | None]:
    """``"user/name@rev"`` -> ``("user/name", "rev")``; no ``@`` -> ``(ref, None)``."""
    if "@" in ref:
        repo, rev = ref.rsplit("@", 1)
        if not rev:
            raise LoraNotFound(f"empty revision after '@' in {ref!r}")
        return repo, rev
    return ref, None


def _token_value(token: Any) -> str:
    """The token string from a ``gr.OAuthToken``, a plain string, or ``$HF_TOKEN``."""
    value = getattr(token, "token", token)
    if value is None or value == "":
        value = os.environ.get(TOKEN_ENV, "")
    if not isinstance(value, str) or not value.strip():
        raise HubAuthError("Not signed in: sign in with Hugging Face (or set HF_TOKEN) to save to the Hub.")
    return value.strip()
