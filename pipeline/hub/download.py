"""Resolving LoRA and base-model references (local path or Hub id), with clear messages when the Hub fails."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline.generate import ModelUnavailable

from .card import _require_lora
from .errors import HubUnavailable, LoraNotFound, _classify, _endpoint_host, _failure_error, _translate
from .names import LORA_DOWNLOAD_PATTERNS, LORA_FILE, _looks_like_path, hub_offline, is_hub_id, split_revision


def _offline_message(what: str, ref: str, local_hint: str) -> str:
    why = ("HF_HUB_OFFLINE is set" if hub_offline() else "the Hub cannot be reached")
    return (f"{what} {ref!r} is not in the local Hugging Face cache and {why}. "
            f"Set a local path ({local_hint}), or go online (unset HF_HUB_OFFLINE / check the connection) "
            "so it can be downloaded.")


def _snapshot(repo_id: str, revision: str | None, patterns: list[str], cache_dir, token, what: str,
              local_hint: str, not_found: type[ModelUnavailable] = ModelUnavailable) -> Path:
    from huggingface_hub import snapshot_download

    secret = None if token is None else getattr(token, "token", token)
    ref = repo_id + (f"@{revision}" if revision else "")
    failure: Exception | None = None
    try:
        folder = snapshot_download(repo_id, revision=revision, allow_patterns=patterns, cache_dir=cache_dir,
                                   token=secret, local_files_only=hub_offline(), etag_timeout=10)
    except Exception as exc:  # noqa: BLE001 - HTTP, connection and cache errors come in many types
        failure = _download_error(exc, ref, what, local_hint, not_found, secret)
    if failure is not None:
        raise failure  # outside the except block: no chained original that might quote a token
    return Path(folder)


def _download_error(exc: Exception, ref: str, what: str, local_hint: str, not_found: type[ModelUnavailable],
                    secret: str | None) -> Exception:
    from huggingface_hub.errors import (GatedRepoError, LocalEntryNotFoundError, OfflineModeIsEnabled,
                                        RepositoryNotFoundError, RevisionNotFoundError)

    if hub_offline() and isinstance(exc, (LocalEntryNotFoundError, OfflineModeIsEnabled)):
        return HubUnavailable(_offline_message(what, ref, local_hint))
    failure = _classify(exc)
    doing = f"download {what} {ref!r}"
    if failure is not None and failure.unreachable:
        return HubUnavailable(f"{_failure_error(failure, doing, _endpoint_host())} "
                              + _offline_message(what, ref, local_hint))
    if isinstance(exc, (RepositoryNotFoundError, GatedRepoError, RevisionNotFoundError)) or (
            failure is not None and failure.status == 404):
        return not_found(f"{what} {ref!r} was not found on the Hub (repo not found, HTTP 404), or it is "
                         "private and this sign-in cannot read it.")
    if failure is not None:
        return _failure_error(failure, doing, _endpoint_host(), what=f"{what} {ref!r}")
    if isinstance(exc, (LocalEntryNotFoundError, OfflineModeIsEnabled)):
        return HubUnavailable(_offline_message(what, ref, local_hint))
    return _translate(exc, secret, doing)


def resolve_lora(ref: str | Path, *, cache_dir: str | Path | None = None, token: Any = None) -> Path:
    """A usable LoRA location: the folder holding ``pytorch_lora_weights.safetensors`` or a
    ``.safetensors`` file (both are what :func:`pipeline.generate` loads).

    ``ref`` is a local folder or file, or a Hub id ``owner/name`` (optionally ``@revision``),
    downloaded (weights and ``training.json`` only) into the Hugging Face cache.
    """
    hint = "--lora DIR pointing at a trained LoRA folder"
    if isinstance(ref, Path) or _looks_like_path(split_revision(str(ref).strip())[0]):
        path = Path(ref).expanduser()
        if path.is_file():
            if path.suffix != ".safetensors":
                raise LoraNotFound(f"{path} is not a .safetensors file")
            return path
        if path.is_dir():
            return _require_lora(path)
        raise LoraNotFound(f"LoRA not found at {path}")
    repo_id, revision = split_revision(str(ref).strip())
    if not is_hub_id(repo_id):
        raise LoraNotFound(f"{ref!r} is neither a local LoRA folder nor a Hub repo id (owner/name)")
    folder = _snapshot(repo_id, revision, list(LORA_DOWNLOAD_PATTERNS), cache_dir, token, "LoRA", hint,
                       LoraNotFound)
    if not (folder / LORA_FILE).is_file():
        raise LoraNotFound(f"Hub repo {str(ref)!r} has no {LORA_FILE}")
    return folder


def resolve_base_model(ref: str | Path, *, cache_dir: str | Path | None = None, token: Any = None) -> str:
    """A base model that :class:`pipeline.generate.PipelineCache` can load.

    A local diffusers folder (with ``model_index.json``) is returned as its path. A Hub id is
    checked: online, its ``model_index.json`` is fetched (access and existence) and the id is
    returned, leaving the weight download to diffusers (which picks one variant rather than every
    file); offline, the cached snapshot folder is returned, or :class:`HubUnavailable` raised.
    """
    hint = "--base or HEADSHOT_BASE_MODEL to a diffusers folder with model_index.json"
    text = str(ref).strip()
    if isinstance(ref, Path) or _looks_like_path(split_revision(text)[0]):
        folder = Path(text).expanduser()
        if not (folder / "model_index.json").is_file():
            raise ModelUnavailable(f"no diffusers model at {folder} (model_index.json missing). Set {hint}, "
                                   "or use a Hub id while online.")
        return str(folder)
    if "@" in text:
        # PipelineCache loads by id or folder only; silently dropping a revision would load other weights.
        raise ModelUnavailable(f"base model {text!r}: revisions are not supported; download that revision to a "
                               f"local folder and set {hint}")
    if not is_hub_id(text):
        raise ModelUnavailable(f"{text!r} is neither a local diffusers folder nor a Hub repo id (owner/name)")
    folder = _snapshot(text, None, ["model_index.json"], cache_dir, token, "base model", hint)
    return str(folder) if hub_offline() else text


def describe_base_model(ref: str, device: str) -> str:
    """One line for the UI: where the base model comes from, whether it is reachable, and the device."""
    folder = Path(ref).expanduser()
    if folder.is_dir():
        ok = (folder / "model_index.json").is_file()
        where = "local folder" if ok else "⚠️ not a diffusers folder (model_index.json missing)"
    elif hub_offline():
        where = ("⚠️ **No base model reachable**: offline (HF_HUB_OFFLINE=1) and this is not a local folder. "
                 "Set HEADSHOT_BASE_MODEL to a local SDXL folder in diffusers layout, or go online.")
    else:
        where = "Hugging Face Hub id, downloaded on first use"
    slow = " No GPU here: with a real SDXL model, training and generation take hours." if device == "CPU" else ""
    return f"**Base model:** `{ref}` · {where} · **device:** {device}.{slow}"
