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
"""
from __future__ import annotations

import contextlib
import contextvars
import hashlib
import json
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from huggingface_hub import ModelCard, ModelCardData

from pipeline.generate import ModelUnavailable

log = logging.getLogger(__name__)

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

_SINGLE_TRY: contextvars.ContextVar[bool] = contextvars.ContextVar("hub_single_try", default=False)
_NAME_BAD = re.compile(r"[^A-Za-z0-9._-]+")
_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")


class HubError(RuntimeError):
    """A Hub operation failed; the message is safe to show (it never contains the token)."""


class HubAuthError(HubError):
    """No usable token: the user is not signed in and ``$HF_TOKEN`` is not set."""


class HubUnavailable(ModelUnavailable):
    """The Hub cannot be reached (offline mode or no connection) and nothing usable is cached."""


class HubRateLimited(HubError):
    """The Hub answered 429; ``retry_after`` is its Retry-After in seconds, when it sent one."""

    def __init__(self, message: str, retry_after: int | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class LoraNotFound(ModelUnavailable):
    """A LoRA reference points at no usable weights (missing folder/file, repo without weights)."""


# --------------------------------------------------------------------------------------------
# Helpers


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


def _scrub(text: str, token: str | None) -> str:
    return text.replace(token, "***") if token else text


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_training_json(lora_dir: str | Path) -> dict:
    """``training.json`` from a LoRA folder, or ``{}`` when there is none (or it is unreadable)."""
    path = Path(lora_dir) / TRAINING_JSON
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        log.warning("ignoring unreadable %s", TRAINING_JSON)
        return {}
    return data if isinstance(data, dict) else {}


def _require_lora(lora_dir: str | Path) -> Path:
    folder = Path(lora_dir).expanduser()
    if not (folder / LORA_FILE).is_file():
        raise LoraNotFound(f"no LoRA weights in {folder}: {LORA_FILE} is missing (has training finished?)")
    return folder


# --------------------------------------------------------------------------------------------
# Model card


def model_card(lora_dir: str | Path, base_model: str | None = None, trigger: str | None = None,
               repo_id: str | None = None, license: str = DEFAULT_LICENSE) -> ModelCard:
    """The model card for a trained LoRA folder. Values missing from the arguments come from
    ``training.json`` (base model, trigger and class word, rank, steps, ...)."""
    info = read_training_json(lora_dir)
    config = info.get("config") if isinstance(info.get("config"), dict) else {}
    base = (base_model or config.get("base") or "").strip()
    trigger = (trigger or config.get("trigger") or "sks").strip()
    class_word = str(config.get("class_word") or "person").strip()
    instance_prompt = f"a photo of {trigger} {class_word}"
    base_is_hub = bool(base) and not _looks_like_path(base) and is_hub_id(base)
    title = repo_id.split("/", 1)[-1] if repo_id else Path(lora_dir).name or "headshot-lora"

    data = ModelCardData(
        base_model=base if base_is_hub else None,
        license=license,
        library_name="diffusers",
        pipeline_tag="text-to-image",
        tags=list(CARD_TAGS),
        instance_prompt=instance_prompt,
        widget=[],
    )
    base_text = f"`{base}`" if base_is_hub else ("a local base model" if base else "an SDXL base model")
    load_id = repo_id or "<your-user>/<this-repo>"
    pipe_id = base if base_is_hub else "stabilityai/stable-diffusion-xl-base-1.0"

    rows = []
    for key in ("rank", "alpha", "steps", "learning_rate", "resolution", "seed", "mixed_precision"):
        if key in config:
            rows.append(f"| {key} | {config[key]} |")
    n_photos = len(config.get("photo_sha256") or [])
    if n_photos:
        rows.append(f"| photos | {n_photos} (identified by SHA-256 only) |")
    if info.get("lora_sha256"):
        rows.append(f"| weights sha256 | `{info['lora_sha256']}` |")
    table = ("| setting | value |\n|---|---|\n" + "\n".join(rows) + "\n") if rows else "(no training.json)\n"

    body = f"""
# {title}

A personal DreamBooth LoRA made with Headshot Studio on {base_text}.
Trigger: `{trigger}`. Use it in prompts as **{instance_prompt}**.

This repository is private: it belongs to the person it was trained on.

## Use with diffusers

```python
import torch
from diffusers import DiffusionPipeline

pipe = DiffusionPipeline.from_pretrained("{pipe_id}", torch_dtype=torch.float16).to("cuda")
pipe.load_lora_weights("{load_id}", weight_name="{LORA_FILE}")
image = pipe("{instance_prompt}, professional headshot, studio lighting").images[0]
```

(Loading a private repo needs a token: sign in with `hf auth login` or set `HF_TOKEN`.)

## What is (and is not) in this repository

- `{LORA_FILE}`: the LoRA weights (UNet attention layers only).
- `{TRAINING_JSON}`: the training settings, the loss history, library versions, the SHA-256 of the
  weights, and a SHA-256 hash of each training photo. Hashes only: no photos, no photo file names,
  no pixels.
- `{README}`: this card.

The capture photos used for training are never uploaded, and no example images are shown here.

## Training

{table}
## Licence

{license}: the LoRA inherits the licence and use restrictions of its base model.
"""
    return ModelCard(f"---\n{data.to_yaml()}\n---\n{body}")


# --------------------------------------------------------------------------------------------
# Save


def _public_training_json(lora_dir: Path) -> bytes | None:
    """``training.json`` as uploaded: checked against the weights, with a local base path redacted."""
    path = lora_dir / TRAINING_JSON
    if not path.is_file():
        return None
    info = read_training_json(lora_dir)
    if not info:
        raise HubError(f"{TRAINING_JSON} in {lora_dir} is not readable JSON; retrain or remove it")
    recorded = info.get("lora_sha256")
    if recorded and recorded != _sha256_file(lora_dir / LORA_FILE):
        raise HubError(f"{TRAINING_JSON} does not describe {LORA_FILE} (sha256 differs); it is stale")
    config = info.get("config")
    if isinstance(config, dict) and isinstance(config.get("base"), str) and _looks_like_path(config["base"]):
        config["base"] = LOCAL_BASE
    return (json.dumps(info, indent=2) + "\n").encode()


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


@dataclass(frozen=True)
class _Failure:
    """What a failed Hub call amounts to: an HTTP status (with Retry-After) or no connection."""

    status: int | None = None
    retry_after: int | None = None
    unreachable: bool = False


def _network_types() -> tuple[type[BaseException], ...]:
    types: tuple[type[BaseException], ...] = (ConnectionError, TimeoutError)
    try:
        import httpx2

        types += (httpx2.TransportError,)
    except ImportError:  # pragma: no cover
        pass
    return types


def _classify(exc: BaseException) -> _Failure | None:
    """Walk the cause chain (snapshot_download wraps HTTP and connection errors in
    LocalEntryNotFoundError) for the first HTTP response or connection failure."""
    from huggingface_hub.errors import HfHubHTTPError

    network = _network_types()
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, HfHubHTTPError):
            response = getattr(current, "response", None)
            status = getattr(response, "status_code", None)
            if status is not None:
                return _Failure(status=int(status), retry_after=_retry_after(response))
        if isinstance(current, network):
            return _Failure(unreachable=True)
        current = current.__cause__ or current.__context__
    return None


def _retry_after(response: Any) -> int | None:
    value = (getattr(response, "headers", None) or {}).get("retry-after")
    try:
        return max(0, int(str(value).strip())) if value is not None else None
    except ValueError:  # an HTTP date: not worth parsing for a message
        return None


def _endpoint_host(api: Any = None) -> str:
    from urllib.parse import urlparse

    from huggingface_hub import constants

    endpoint = getattr(api, "endpoint", None) or constants.ENDPOINT
    return urlparse(str(endpoint)).netloc or "huggingface.co"


def _failure_error(failure: _Failure, doing: str, host: str, what: str = "that repo") -> Exception:
    """The specific, token-free message for a classified failure (one per status)."""
    if failure.unreachable:
        return HubUnavailable(f"Cannot {doing}: cannot reach the Hugging Face Hub ({host}). Check the internet "
                              "connection and try again later.")
    status = failure.status
    if status == 401:
        return HubAuthError(f"Cannot {doing}: the Hub did not accept your sign-in (HTTP 401: the token is "
                            "invalid or expired). Sign in again with Hugging Face.")
    if status == 403:
        return HubAuthError(f"Cannot {doing}: this sign-in has no write access to {what} or its "
                            "organisation (HTTP 403). Sign in with an account (or token) that has write "
                            "access, or pick a repo in your own namespace.")
    if status == 404:
        return HubError(f"Cannot {doing}: repo not found on the Hub (HTTP 404). Check the name, or sign in "
                        "with an account that can see it.")
    if status == 429:
        wait = (f"try again in {failure.retry_after} s" if failure.retry_after is not None
                else "wait a minute and try again")
        return HubRateLimited(f"Cannot {doing}: the Hub is rate limiting requests (HTTP 429); {wait}.",
                              failure.retry_after)
    return HubError(f"Cannot {doing}: the Hub answered HTTP {status}. Try again later.")


def _translate(exc: Exception, secret: str | None, doing: str, api: Any = None) -> Exception:
    """A token-free, actionable error for a failed Hub call."""
    from huggingface_hub.errors import LocalEntryNotFoundError, LocalTokenNotFoundError, OfflineModeIsEnabled

    if isinstance(exc, LocalTokenNotFoundError):
        return HubAuthError(f"Cannot {doing}: not signed in. Sign in with Hugging Face (or set HF_TOKEN).")
    failure = _classify(exc)
    if failure is not None:
        return _failure_error(failure, doing, _endpoint_host(api))
    if isinstance(exc, (OfflineModeIsEnabled, LocalEntryNotFoundError)):
        return HubUnavailable(f"Cannot {doing}: the Hub is unreachable. Go online and try again.")
    return HubError(f"Cannot {doing}: {_scrub(f'{type(exc).__name__}: {exc}', secret)}")


@contextlib.contextmanager
def _single_try():
    """One try per user action: while active, a 429 is raised at once instead of being retried.

    huggingface_hub retries uploads on 429 (up to 5 times, honouring Retry-After) inside
    ``http_backoff``. For a button press that is a hidden wait or a retry storm; the user gets the
    rate-limit message with the wait instead. Implemented as a response hook on the shared client,
    gated by a context variable, so other callers in the process keep the library's behaviour.
    """
    from huggingface_hub.utils import get_session

    client = get_session()
    hooks = client.event_hooks
    if _raise_rate_limited not in hooks.get("response", []):
        hooks.setdefault("response", []).append(_raise_rate_limited)
        client.event_hooks = hooks
    token = _SINGLE_TRY.set(True)
    try:
        yield
    finally:
        _SINGLE_TRY.reset(token)


def _raise_rate_limited(response) -> None:
    if _SINGLE_TRY.get() and response.status_code == 429:
        from huggingface_hub.utils import hf_raise_for_status

        response.read()
        hf_raise_for_status(response)


# --------------------------------------------------------------------------------------------
# Resolve


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
