"""Hugging Face Hub: model cards, saving a personal LoRA to the user's private repo, and resolving
LoRA / base-model references (local path or Hub id) with a clear message when the Hub is out of reach.

Design decisions, in one place:

- **Allow-list uploads.** :func:`save_lora_to_hub` uploads exactly :data:`UPLOAD_FILES`
  (``pytorch_lora_weights.safetensors``, ``training.json``, ``README.md``), one explicit
  ``upload_file`` call each. Nothing is globbed, so capture photos, checkpoints or anything else a
  training folder holds can never leave the machine. The weights go first and the card last, so an
  interrupted upload never leaves a repo whose card describes weights that are not there.
- **Always private.** The repo is created with ``private=True`` under the signed-in user's namespace
  (``whoami``); the repo name is sanitised to ``[A-Za-z0-9._-]`` (at most 96 characters).
- **The token is a secret.** It comes from the Gradio OAuth login (``gr.OAuthToken``, whose
  ``.token`` is used) or ``$HF_TOKEN``; it is passed to the API calls as an argument only: never
  logged, printed, put on a command line, written to a file, or left in an error message
  (errors are scrubbed before they are re-raised).
- **Nothing identifying in the card or in ``training.json``.** The card has no widget examples and
  no images; ``training.json`` holds hyper-parameters, photo SHA-256 hashes and the LoRA's hash.
  A local base-model path (which may name a user's home folder) is replaced by ``"(local folder)"``
  in the uploaded ``training.json`` and left out of the card's metadata.
- **Offline is an answer, not a hang.** With ``HF_HUB_OFFLINE`` set (read at call time, not only at
  import) lookups use the local cache only; anything not cached raises :class:`HubUnavailable`
  (a :class:`pipeline.generate.ModelUnavailable`) that says what to do: set a local path, or go online.

Layout: ``names`` (constants, repo names and ids, revisions, offline check, the token),
``errors`` (the exceptions, classifying and translating failed Hub calls, one try per action),
``card`` (the LoRA folder: weights check, ``training.json``, the model card), ``upload``
(:func:`save_lora_to_hub`), ``download`` (:func:`resolve_lora`, :func:`resolve_base_model`,
:func:`describe_base_model`). Import from ``pipeline.hub``; it re-exports the public names.
"""
from .card import model_card, read_training_json
from .download import describe_base_model, resolve_base_model, resolve_lora
from .errors import HubAuthError, HubError, HubRateLimited, HubUnavailable, LoraNotFound
from .names import (
    CARD_TAGS, DEFAULT_LICENSE, LOCAL_BASE, LORA_DOWNLOAD_PATTERNS, LORA_FILE, MAX_REPO_NAME, README, TOKEN_ENV,
    TRAINING_JSON, UPLOAD_FILES, hub_offline, is_hub_id, sanitize_repo_name, split_revision,
)
from .upload import save_lora_to_hub

__all__ = [
    "CARD_TAGS", "DEFAULT_LICENSE", "HubAuthError", "HubError", "HubRateLimited", "HubUnavailable",
    "LOCAL_BASE", "LORA_DOWNLOAD_PATTERNS", "LORA_FILE", "LoraNotFound", "MAX_REPO_NAME", "README",
    "TOKEN_ENV", "TRAINING_JSON", "UPLOAD_FILES", "describe_base_model", "hub_offline", "is_hub_id",
    "model_card", "read_training_json", "resolve_base_model", "resolve_lora", "sanitize_repo_name",
    "save_lora_to_hub", "split_revision",
]
