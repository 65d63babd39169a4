"""Generation: a per-process pipeline cache, per-request LoRA isolation, seeds, long prompts,
one-variable iteration and a per-session lineage.

Design decisions, in one place:

- **One model load per process.** :class:`PipelineCache` loads a base model once per
  (model id, dtype, device) and hands the same pipeline object to every request.
- **One job per pipeline at a time.** Loading a LoRA mutates the shared pipeline, so every
  request holds that pipeline's lock from LoRA load to LoRA delete. One GPU runs one job at a time
  anyway; the lock turns "would contaminate" into "waits its turn".
- **Per-request LoRA.** Each request loads the user's LoRA under a unique adapter name, activates
  only that adapter at the requested scale, generates, and deletes it in a ``finally`` block. When
  no adapter remains the LoRA layers are unwrapped entirely, so a request without a LoRA runs the
  bare base model and gives its output bit-exactly.
- **Seeds.** Image ``i`` of a request uses ``seed + i`` and its own ``torch.Generator``; each
  :class:`Result` records its seed and a spec carrying that seed, so ``generate(result.spec)``
  reproduces that image alone (bit-exactly on CPU at a fixed thread count).
- **Long prompts.** CLIP sees 77 tokens (75 plus start/end). A longer prompt is split into
  chunks of at most 75 tokens (at commas, then words, or the caller's ``prompt_chunks``); each
  chunk is encoded with ``pipe.encode_prompt`` and the embeddings are concatenated along the token
  axis (the compel / A1111 approach); the pooled embedding comes from the first chunk. Nothing is
  silently truncated: a single word longer than a chunk raises :class:`PromptTooLong`.
- **Iteration.** :func:`vary` returns specs that differ from the base in exactly ONE field or knob;
  the seed and everything else stay locked. Varying a prompt field (background, wardrobe, ...)
  needs a ``recompile`` callable that rebuilds the prompt from the fields; without it ``vary``
  raises, because images labelled "different background" with an unchanged prompt would lie.
- **No user data in module state or logs.** Lineage lives in a JSON file inside the caller's
  session folder; logs carry ids and timings only.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import torch

log = logging.getLogger(__name__)

DEFAULT_BASE_MODEL = "stabilityai/stable-diffusion-xl-base-1.0"
BASE_MODEL_ENV = "HEADSHOT_BASE_MODEL"
PROMPT_FIELDS = ("background", "wardrobe", "lighting", "expression", "framing")
# Top-level knobs that vary() may change without touching the prompt.
VARY_KNOBS = ("guidance_scale", "steps", "lora_scale")
MAX_IMAGES = 8
MAX_SIDE = 2048
MAX_STEPS = 150
PNG_META_KEY = "headshot-studio"
LINEAGE_FILE = "lineage.json"
_ADAPTER_PREFIX = "req_"


class ModelUnavailable(RuntimeError):
    """A base model or LoRA cannot be loaded (missing folder, offline Hub id, ...)."""


class PromptTooLong(ValueError):
    """A prompt cannot be split into chunks the text encoder can see."""


def default_base_model() -> str:
    """``$HEADSHOT_BASE_MODEL`` (a local diffusers folder or Hub id), else SDXL base 1.0."""
    return os.environ.get(BASE_MODEL_ENV, "").strip() or DEFAULT_BASE_MODEL


# --------------------------------------------------------------------------------------------
# Spec


@dataclass(frozen=True)
class GenerationSpec:
    """Everything that determines one image, apart from the model weights themselves."""

    prompt: str
    negative_prompt: str = ""
    preset: str = ""
    fields: Mapping[str, str] = field(default_factory=dict)
    seed: int = 0
    steps: int = 30
    guidance_scale: float = 5.0
    width: int = 1024
    height: int = 1024
    lora: str | None = None
    lora_scale: float = 1.0
    base_model: str = DEFAULT_BASE_MODEL
    # Optional pre-split prompt chunks (e.g. from presets.compile_prompt); each must fit in 75 tokens.
    prompt_chunks: tuple[str, ...] | None = None
    # A diffusers scheduler class name and its from_config options (a preset's sampler); None: the
    # model's own scheduler. Set per request, so one request's choice never carries into the next.
    scheduler: str | None = None
    scheduler_options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        object.__setattr__(self, "fields", dict(self.fields))
        object.__setattr__(self, "scheduler_options", dict(self.scheduler_options))
        if self.scheduler is not None and not (self.scheduler.isidentifier() and self.scheduler.endswith("Scheduler")):
            raise ValueError(f"scheduler must be a diffusers scheduler class name, got {self.scheduler!r}")
        if self.prompt_chunks is not None:
            object.__setattr__(self, "prompt_chunks", tuple(self.prompt_chunks))
        if self.lora is not None:
            object.__setattr__(self, "lora", str(self.lora))
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or not 0 <= self.seed < 2**63:
            raise ValueError(f"seed must be an integer in [0, 2**63), got {self.seed!r}")
        if not 1 <= int(self.steps) <= MAX_STEPS:
            raise ValueError(f"steps must be in [1, {MAX_STEPS}], got {self.steps}")
        for name in ("width", "height"):
            v = getattr(self, name)
            if not (64 <= v <= MAX_SIDE and v % 8 == 0):
                raise ValueError(f"{name} must be a multiple of 8 in [64, {MAX_SIDE}], got {v}")
        if not 0 <= self.guidance_scale <= 30:
            raise ValueError(f"guidance_scale must be in [0, 30], got {self.guidance_scale}")
        if not -4 <= self.lora_scale <= 4:
            raise ValueError(f"lora_scale must be in [-4, 4], got {self.lora_scale}")
        for k, v in self.fields.items():
            if not isinstance(k, str) or not isinstance(v, str):
                raise ValueError(f"fields must map str to str, got {k!r}: {v!r}")

    def __hash__(self) -> int:
        return hash(self.spec_id())

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["fields"] = dict(sorted(self.fields.items()))
        d["scheduler_options"] = dict(sorted(self.scheduler_options.items()))
        d["prompt_chunks"] = list(self.prompt_chunks) if self.prompt_chunks is not None else None
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "GenerationSpec":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ValueError(f"unknown spec keys: {sorted(unknown)}")
        return cls(**dict(data))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    def spec_id(self) -> str:
        """A stable 16-hex-digit hash of the whole spec (same spec -> same id, across processes)."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:16]

    def with_seed(self, seed: int) -> "GenerationSpec":
        return dataclasses.replace(self, seed=seed)

    def diff(self, other: "GenerationSpec") -> set[str]:
        """Names of the fields and knobs that differ (prompt text, being derived, is not listed)."""
        out = {f"fields.{k}" for k in set(self.fields) | set(other.fields)
               if self.fields.get(k) != other.fields.get(k)}
        skip = {"fields", "prompt", "negative_prompt", "prompt_chunks", "scheduler_options"}
        out |= {f.name for f in dataclasses.fields(self)
                if f.name not in skip and getattr(self, f.name) != getattr(other, f.name)}
        return out


Recompile = Callable[[dict], "tuple[str, str] | tuple[str, str, Sequence[str] | None]"]


def vary(spec: GenerationSpec, field_name: str, values: Iterable[Any],
         recompile: Recompile | None = None) -> list[GenerationSpec]:
    """Specs that differ from ``spec`` in exactly the ONE field ``field_name``, one per value.

    ``field_name`` is a prompt field (``PROMPT_FIELDS`` or a key already in ``spec.fields``) or a
    knob in ``VARY_KNOBS``. Seed, model, LoRA, size and every other field stay locked. A prompt
    field needs ``recompile(fields) -> (prompt, negative[, chunks])`` to rebuild the prompt;
    knobs keep the prompt as it is. Anything else raises ``ValueError``.
    """
    if not isinstance(field_name, str) or not field_name:
        raise ValueError(f"vary takes exactly one field name, got {field_name!r}")
    if "," in field_name or "=" in field_name or " " in field_name.strip():
        raise ValueError(f"vary changes exactly one field; got {field_name!r}. Run one vary per field.")
    name = field_name.strip()
    if name.startswith("fields."):
        name = name[len("fields."):]
    if name == "seed":
        raise ValueError("vary keeps the seed locked; to try other seeds, generate with n > 1 or a new seed")
    values = list(values)
    if not values:
        raise ValueError("vary needs at least one value")
    if len(values) > MAX_IMAGES * 4:
        raise ValueError(f"vary takes at most {MAX_IMAGES * 4} values, got {len(values)}")
    out = []
    if name in VARY_KNOBS:
        kind = type(getattr(spec, name))
        for v in values:
            try:
                cast = kind(v)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"{name}: {v!r} is not a {kind.__name__}") from exc
            if kind is int and float(v) != cast:
                raise ValueError(f"{name}: {v!r} is not an integer")
            out.append(dataclasses.replace(spec, **{name: cast}))
        return out
    if name not in PROMPT_FIELDS and name not in spec.fields:
        raise ValueError(f"cannot vary {field_name!r}: allowed are the prompt fields "
                         f"{sorted(set(PROMPT_FIELDS) | set(spec.fields))} and the knobs {list(VARY_KNOBS)}")
    if recompile is None:
        raise ValueError(f"varying the prompt field {name!r} needs recompile(fields) -> (prompt, negative) "
                         "to rebuild the prompt; without it every image would get the same prompt")
    for v in values:
        if not isinstance(v, str) or not v:
            raise ValueError(f"{name}: values must be non-empty strings, got {v!r}")
        fields = dict(spec.fields)
        fields[name] = v
        compiled = recompile(dict(fields))
        prompt, negative = compiled[0], compiled[1]
        chunks = tuple(compiled[2]) if len(compiled) > 2 and compiled[2] is not None else None
        out.append(dataclasses.replace(spec, fields=fields, prompt=prompt, negative_prompt=negative,
                                       prompt_chunks=chunks))
    return out


# --------------------------------------------------------------------------------------------
# Pipeline cache


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def default_dtype(device: str) -> torch.dtype:
    if str(device).startswith("cuda"):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


def _hub_offline() -> bool:
    try:
        from huggingface_hub import constants

        if constants.HF_HUB_OFFLINE:
            return True
    except ImportError:  # pragma: no cover
        pass
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def _looks_like_path(model: str) -> bool:
    return (os.path.isabs(model) or model.startswith((".", "~")) or "\\" in model
            or model.count("/") != 1 or Path(model).expanduser().exists())


@dataclass
class _Entry:
    pipe: Any
    lock: threading.Lock
    model_id: str
    load_s: float
    scheduler: Any = None  # the model's own scheduler, restored for requests that name none

    def __post_init__(self):
        self.scheduler = self.pipe.scheduler

    def scheduler_for(self, spec: "GenerationSpec"):
        if spec.scheduler is None:
            return self.scheduler
        import diffusers

        cls = getattr(diffusers, spec.scheduler, None)
        if cls is None or not hasattr(cls, "from_config"):
            raise ValueError(f"unknown scheduler {spec.scheduler!r} in diffusers {diffusers.__version__}")
        return cls.from_config(self.scheduler.config, **spec.scheduler_options)


class PipelineCache:
    """Loads each base model once per process and serialises jobs per pipeline.

    Keyed by (model id, dtype, device). Loading happens under one lock, so two first requests for
    the same model load it once. Use :meth:`job` to run work on a pipeline: it holds that pipeline's
    lock, because LoRA loading mutates the shared object.
    """

    def __init__(self, device: str | None = None, dtype: torch.dtype | None = None):
        self.device = device or default_device()
        self.dtype = dtype or default_dtype(self.device)
        self._entries: dict[tuple[str, str, str], _Entry] = {}
        self._load_lock = threading.Lock()

    def _key(self, model: str) -> tuple[str, str, str]:
        return (model, str(self.dtype), str(self.device))

    def loaded(self) -> list[str]:
        return [k[0] for k in self._entries]

    def entry(self, model: str | None = None) -> _Entry:
        model = model or default_base_model()
        key = self._key(model)
        found = self._entries.get(key)
        if found is not None:
            return found
        with self._load_lock:
            found = self._entries.get(key)
            if found is None:
                t0 = time.perf_counter()
                pipe = self._load(model)
                found = _Entry(pipe, threading.Lock(), model, time.perf_counter() - t0)
                self._entries[key] = found
                log.info("loaded base model %s in %.1f s", model, found.load_s)
            return found

    def get(self, model: str | None = None):
        return self.entry(model).pipe

    def _load(self, model: str):
        from diffusers import DiffusionPipeline

        offline = _hub_offline()
        if _looks_like_path(model):
            folder = Path(model).expanduser()
            if not (folder / "model_index.json").is_file():
                raise ModelUnavailable(
                    f"no diffusers model at {folder} (model_index.json missing). Set {BASE_MODEL_ENV} "
                    "or --base to a local folder in diffusers layout, or to a Hub id while online.")
            source = str(folder)
        else:
            source = model
        try:
            pipe = DiffusionPipeline.from_pretrained(source, dtype=self.dtype)
        except Exception as exc:  # hub/offline errors come in many types (OSError, HfHubHTTPError, ...)
            hint = ("HF_HUB_OFFLINE is set and the model is not in the local cache: " if offline else "")
            raise ModelUnavailable(
                f"cannot load base model {model!r}: {hint}{type(exc).__name__}. Set {BASE_MODEL_ENV} "
                "(or --base) to a local diffusers folder, or go online (unset HF_HUB_OFFLINE) so the "
                "Hub id can be downloaded.") from exc
        pipe = pipe.to(self.device)
        pipe.set_progress_bar_config(disable=True)
        return pipe


_DEFAULT_CACHE: PipelineCache | None = None
_DEFAULT_CACHE_LOCK = threading.Lock()


def default_cache() -> PipelineCache:
    """The process-wide cache (holds model weights only, never user data)."""
    global _DEFAULT_CACHE
    with _DEFAULT_CACHE_LOCK:
        if _DEFAULT_CACHE is None:
            _DEFAULT_CACHE = PipelineCache()
        return _DEFAULT_CACHE


# --------------------------------------------------------------------------------------------
# LoRA isolation


def adapters_present(pipe) -> list[str]:
    """All adapter names loaded into any LoRA-capable component of ``pipe``."""
    names: list[str] = []
    for component in getattr(pipe, "_lora_loadable_modules", ()):
        model = getattr(pipe, component, None)
        names += list(getattr(model, "peft_config", {}) or {})
    return sorted(set(names))


def _drop_adapters(pipe, names: Sequence[str]) -> None:
    if names:
        pipe.delete_adapters(list(names))
    if not adapters_present(pipe):
        # Unwrap the (now empty) LoRA layers so the next plain request runs the bare base model.
        pipe.unload_lora_weights()


def _load_lora(pipe, lora: str, adapter: str) -> None:
    path = Path(lora).expanduser()
    try:
        if path.is_file():
            pipe.load_lora_weights(str(path.parent), weight_name=path.name, adapter_name=adapter)
        elif path.is_dir():
            pipe.load_lora_weights(str(path), adapter_name=adapter)
        elif _looks_like_path(lora):
            raise ModelUnavailable(f"LoRA not found at {path}")
        else:
            pipe.load_lora_weights(lora, adapter_name=adapter)
    except ModelUnavailable:
        raise
    except (OSError, ValueError, EnvironmentError) as exc:
        raise ModelUnavailable(f"cannot load LoRA {lora!r}: {type(exc).__name__}: {exc}") from exc


# --------------------------------------------------------------------------------------------
# Prompt encoding (chunked beyond 75 tokens)


def _tokenizers(pipe) -> list:
    return [t for t in (getattr(pipe, "tokenizer", None), getattr(pipe, "tokenizer_2", None)) if t is not None]


def _chunk_limit(pipe) -> int:
    return min(t.model_max_length for t in _tokenizers(pipe)) - 2


def _n_tokens(pipe, text: str) -> int:
    return max(len(t(text, add_special_tokens=False, truncation=False, verbose=False).input_ids)
               for t in _tokenizers(pipe))


def split_prompt(pipe, text: str) -> list[str]:
    """``text`` as chunks of at most 75 tokens, split at commas, then at spaces."""
    limit = _chunk_limit(pipe)
    if _n_tokens(pipe, text) <= limit:
        return [text]
    pieces: list[str] = []
    for phrase in (p.strip() for p in text.split(",")):
        if not phrase:
            continue
        if _n_tokens(pipe, phrase + ",") <= limit:
            pieces.append(phrase + ",")
        else:
            pieces += phrase.split()
    chunks: list[str] = []
    current = ""
    for piece in pieces:
        if _n_tokens(pipe, piece) > limit:
            raise PromptTooLong(f"a single word of {_n_tokens(pipe, piece)} tokens exceeds the "
                                f"{limit}-token chunk limit")
        candidate = f"{current} {piece}".strip()
        if current and _n_tokens(pipe, candidate) > limit:
            chunks.append(current)
            current = piece
        else:
            current = candidate
    if current:
        chunks.append(current)
    return chunks


def _is_sdxl(pipe) -> bool:
    return getattr(pipe, "text_encoder_2", None) is not None


def encode_prompts(pipe, spec: GenerationSpec) -> dict[str, torch.Tensor]:
    """Prompt embeddings for ``pipe(**kwargs)``; long prompts are encoded per 75-token chunk and
    concatenated along the token axis (the pooled SDXL embedding comes from the first chunk)."""
    limit = _chunk_limit(pipe)
    if spec.prompt_chunks:
        chunks = list(spec.prompt_chunks)
        for c in chunks:
            if _n_tokens(pipe, c) > limit:
                raise PromptTooLong(f"a prompt chunk has {_n_tokens(pipe, c)} tokens; the limit is {limit}")
    else:
        chunks = split_prompt(pipe, spec.prompt)
    neg_chunks = split_prompt(pipe, spec.negative_prompt) if spec.negative_prompt else []
    count = max(len(chunks), len(neg_chunks), 1)
    cfg = spec.guidance_scale > 1.0
    device = pipe._execution_device
    pos, neg, pooled, neg_pooled = [], [], None, None
    for i in range(count):
        p = chunks[i] if i < len(chunks) else ""
        n = neg_chunks[i] if i < len(neg_chunks) else None
        if _is_sdxl(pipe):
            pe, ne, pp, npool = pipe.encode_prompt(p, device=device, num_images_per_prompt=1,
                                                   do_classifier_free_guidance=cfg, negative_prompt=n)
            if i == 0:
                pooled, neg_pooled = pp, npool
        else:
            pe, ne = pipe.encode_prompt(p, device, 1, cfg, negative_prompt=n if n is not None else "")
        pos.append(pe)
        neg.append(ne)
    kwargs: dict[str, torch.Tensor] = {"prompt_embeds": torch.cat(pos, dim=1)}
    if cfg:
        kwargs["negative_prompt_embeds"] = torch.cat(neg, dim=1)
    if _is_sdxl(pipe):
        kwargs["pooled_prompt_embeds"] = pooled
        if cfg:
            kwargs["negative_pooled_prompt_embeds"] = neg_pooled
    return kwargs


# --------------------------------------------------------------------------------------------
# Generation


@dataclass
class Result:
    """One generated image. ``spec.seed`` is this image's seed: ``generate(result.spec)`` reproduces it."""

    id: str
    spec: GenerationSpec
    seed: int
    base_model: str
    lora: str | None
    pipeline_class: str
    device: str
    dtype: str
    seconds: float
    image_path: Path | None = None
    image: Any = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "spec": self.spec.to_dict(), "spec_id": self.spec.spec_id(), "seed": self.seed,
            "base_model": self.base_model, "lora": self.lora, "pipeline_class": self.pipeline_class,
            "device": self.device, "dtype": self.dtype, "seconds": round(self.seconds, 4),
            "image_path": str(self.image_path) if self.image_path else None,
        }


def _save_png(image, path: Path, result: Result) -> None:
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    meta = {"id": result.id, "seed": result.seed, "spec": result.spec.to_dict(), "base_model": result.base_model}
    info.add_itxt(PNG_META_KEY, json.dumps(meta, sort_keys=True))
    info.add_text("seed", str(result.seed))
    tmp = path.with_suffix(".png.part")
    image.save(tmp, format="PNG", pnginfo=info)
    os.replace(tmp, path)


def read_png_spec(path: str | Path) -> dict[str, Any]:
    """The metadata :func:`generate` wrote into a PNG (``id``, ``seed``, ``spec``, ``base_model``)."""
    from PIL import Image

    with Image.open(path) as im:
        return json.loads(im.text[PNG_META_KEY])


def generate(spec: GenerationSpec, n: int = 1, cache: PipelineCache | None = None,
             out_dir: str | Path | None = None) -> list[Result]:
    """``n`` images (seeds ``spec.seed .. spec.seed + n - 1``) for ``spec``.

    The LoRA, if any, is loaded under a unique adapter name for this request only and removed
    afterwards; the pipeline's lock is held throughout (one job per pipeline at a time). With
    ``out_dir`` each image is written as ``<id>.png`` with the spec and seed in its PNG text.
    """
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= MAX_IMAGES:
        raise ValueError(f"n must be an integer in [1, {MAX_IMAGES}], got {n!r}")
    if spec.seed + n - 1 >= 2**63:
        raise ValueError("seed + n exceeds the seed range")
    cache = cache or default_cache()
    entry = cache.entry(spec.base_model)
    pipe = entry.pipe
    out = Path(out_dir) if out_dir is not None else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    results: list[Result] = []
    with entry.lock:
        stray = adapters_present(pipe)
        if stray:  # an interrupted earlier job; never let it leak into this one
            log.warning("removing %d stray adapter(s) before generating", len(stray))
            _drop_adapters(pipe, stray)
        adapter = None
        try:
            pipe.scheduler = entry.scheduler_for(spec)
            if spec.lora:
                adapter = f"{_ADAPTER_PREFIX}{uuid.uuid4().hex}"
                _load_lora(pipe, spec.lora, adapter)
                pipe.set_adapters([adapter], adapter_weights=[float(spec.lora_scale)])
            with torch.inference_mode():
                embeds = encode_prompts(pipe, spec)
                gen_device = "cuda" if str(cache.device).startswith("cuda") else "cpu"
                for i in range(n):
                    seed = spec.seed + i
                    t0 = time.perf_counter()
                    generator = torch.Generator(gen_device).manual_seed(seed)
                    image = pipe(**embeds, num_inference_steps=spec.steps, guidance_scale=spec.guidance_scale,
                                 width=spec.width, height=spec.height, generator=generator,
                                 output_type="pil").images[0]
                    result = Result(
                        id=uuid.uuid4().hex[:16], spec=spec.with_seed(seed), seed=seed, base_model=entry.model_id,
                        lora=spec.lora, pipeline_class=type(pipe).__name__, device=str(cache.device),
                        dtype=str(cache.dtype).replace("torch.", ""), seconds=time.perf_counter() - t0, image=image)
                    if out is not None:
                        result.image_path = out / f"{result.id}.png"
                        _save_png(image, result.image_path, result)
                    results.append(result)
                    log.info("generated %s (spec %s) in %.2f s", result.id, spec.spec_id(), result.seconds)
        finally:
            if adapter is not None:
                _drop_adapters(pipe, [a for a in adapters_present(pipe) if a == adapter])
    return results


def write_results(results: Sequence[Result], out_dir: str | Path) -> Path:
    """``results.json`` in ``out_dir`` (the CLI's output contract)."""
    path = Path(out_dir) / "results.json"
    path.write_text(json.dumps({"results": [r.to_dict() for r in results]}, indent=2))
    return path


# --------------------------------------------------------------------------------------------
# Lineage


class Lineage:
    """Per-session history: which result came from which, by varying what. Stored as
    ``<session_dir>/lineage.json`` (written atomically); nothing is kept at module level."""

    def __init__(self, session_dir: str | Path):
        self.path = Path(session_dir) / LINEAGE_FILE
        self._lock = threading.Lock()
        self._entries: dict[str, dict[str, Any]] = {}
        if self.path.is_file():
            data = json.loads(self.path.read_text())
            self._entries = {e["id"]: e for e in data.get("entries", [])}

    def record(self, result: Result, parent_id: str | None = None, field_name: str | None = None,
               value: Any = None, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Add one result; ``extra`` keeps what the spec alone does not (e.g. the prompt edits that
        a later iteration must reuse to keep everything but one field locked)."""
        with self._lock:
            if parent_id is not None and parent_id not in self._entries:
                raise KeyError(f"unknown parent result {parent_id!r}")
            entry = {
                "id": result.id, "parent": parent_id, "field": field_name, "value": value,
                "spec_id": result.spec.spec_id(), "seed": result.seed, "spec": result.spec.to_dict(),
                "image": result.image_path.name if result.image_path else None, "created": time.time(),
                "extra": dict(extra or {}),
            }
            self._entries[result.id] = entry
            self._save()
            return dict(entry)

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".json.part")
        tmp.write_text(json.dumps({"entries": list(self._entries.values())}, indent=1))
        os.replace(tmp, self.path)

    def __contains__(self, result_id: str) -> bool:
        return result_id in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, result_id: str) -> dict[str, Any]:
        return dict(self._entries[result_id])

    def parent(self, result_id: str) -> str | None:
        return self._entries[result_id]["parent"]

    def children(self, result_id: str) -> list[str]:
        return [e["id"] for e in self._entries.values() if e["parent"] == result_id]

    def ancestry(self, result_id: str) -> list[str]:
        """``result_id`` and its ancestors, newest first (the UI's "step back" path)."""
        chain, seen = [], set()
        current: str | None = result_id
        while current is not None and current not in seen:
            seen.add(current)
            chain.append(current)
            current = self._entries[current]["parent"]
        return chain

    def spec(self, result_id: str) -> GenerationSpec:
        return GenerationSpec.from_dict(self._entries[result_id]["spec"])
