"""Generation specs: :class:`GenerationSpec`, :func:`vary` (one-field iteration), limits and errors."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Sequence

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


class ModelUnavailable(RuntimeError):
    """A base model or LoRA cannot be loaded (missing folder, offline Hub id, ...)."""


class PromptTooLong(ValueError):
    """A prompt cannot be split into chunks the text encoder can see."""


def default_base_model() -> str:
    """``$HEADSHOT_BASE_MODEL`` (a local diffusers folder or Hub id), else SDXL base 1.0."""
    return os.environ.get(BASE_MODEL_ENV, "").strip() or DEFAULT_BASE_MODEL


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
