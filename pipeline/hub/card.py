"""A trained LoRA folder: its weights check, training.json (as read, as uploaded) and the model card."""
from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

from huggingface_hub import ModelCard, ModelCardData

from .errors import HubError, LoraNotFound
from .names import CARD_TAGS, DEFAULT_LICENSE, LOCAL_BASE, LORA_FILE, README, TRAINING_JSON, _looks_like_path, is_hub_id

log = logging.getLogger(__package__)  # "pipeline.hub", as before the split


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
