"""Saving a LoRA to the signed-in user's private Hub repo: allow-listed files, weights first, card last."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from pipeline.generate import ModelUnavailable

from .card import _public_training_json, _require_lora, model_card
from .errors import HubAuthError, HubError, HubUnavailable, _single_try, _translate
from .names import (DEFAULT_LICENSE, LORA_FILE, README, TRAINING_JSON, UPLOAD_FILES, _token_value, hub_offline,
                    sanitize_repo_name)

log = logging.getLogger(__package__)  # "pipeline.hub", as before the split


def save_lora_to_hub(lora_dir: str | Path, repo_name: str, token: Any = None, api: Any = None, *,
                     base_model: str | None = None, trigger: str | None = None,
                     license: str = DEFAULT_LICENSE) -> str:
    """Upload a trained LoRA to a PRIVATE repo ``<signed-in user>/<repo_name>``; returns the repo id.

    ``token``: a ``gr.OAuthToken``, a token string, or None for ``$HF_TOKEN``. ``api``: an
    ``HfApi``-compatible object (``whoami``, ``create_repo``, ``upload_file``); None for ``HfApi()``.
    Writes ``README.md`` (the model card) into ``lora_dir`` and uploads only :data:`UPLOAD_FILES`.
    """
    folder = _require_lora(lora_dir)
    name = sanitize_repo_name(repo_name)
    secret = _token_value(token)
    if api is None:
        if hub_offline():
            raise HubUnavailable("Cannot save to the Hub: HF_HUB_OFFLINE is set. Go online (unset "
                                 "HF_HUB_OFFLINE) to save; the LoRA stays in its local folder meanwhile.")
        from huggingface_hub import HfApi

        api = HfApi()
    training = _public_training_json(folder)

    failure: Exception | None = None
    try:
        with _single_try():
            repo_id, uploads = _upload(api, folder, name, secret, training, base_model, trigger, license)
    except (HubError, ModelUnavailable):
        raise
    except Exception as exc:  # noqa: BLE001 - hub/network errors come in many types
        failure = _translate(exc, secret, "save the LoRA to the Hub", api)
    if failure is not None:
        # Raised outside the except block: the original error (whose text may quote the token)
        # is neither the cause nor the context of what callers see or log.
        raise failure
    log.info("saved LoRA to private repo %s (%d files)", repo_id, len(uploads))
    return repo_id


def _upload(api: Any, folder: Path, name: str, secret: str, training: bytes | None, base_model: str | None,
            trigger: str | None, license: str) -> tuple[str, list]:
    """whoami, create the private repo, upload the allow-listed files: each request once, in order."""
    user = api.whoami(token=secret)
    owner = user.get("name") if isinstance(user, dict) else None
    if not owner:
        raise HubAuthError("The Hub did not return a user name for this sign-in; sign in again.")
    repo_id = f"{owner}/{name}"
    api.create_repo(repo_id, token=secret, private=True, repo_type="model", exist_ok=True)

    card = model_card(folder, base_model=base_model, trigger=trigger, repo_id=repo_id, license=license)
    card.save(folder / README)

    uploads: list[tuple[str, Any]] = [(LORA_FILE, str(folder / LORA_FILE))]
    if training is not None:
        uploads.append((TRAINING_JSON, training))
    uploads.append((README, str(folder / README)))
    if any(p not in UPLOAD_FILES for p, _ in uploads):  # pragma: no cover - guards future edits
        raise HubError("refusing to upload a file outside the allow-list")
    for path_in_repo, source in uploads:
        api.upload_file(path_or_fileobj=source, path_in_repo=path_in_repo, repo_id=repo_id,
                        token=secret, repo_type="model",
                        commit_message=f"Headshot Studio: upload {path_in_repo}")
    return repo_id, uploads
