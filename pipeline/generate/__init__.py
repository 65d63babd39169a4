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

Layout: ``spec`` (GenerationSpec, vary, limits, errors), ``models`` (PipelineCache), ``lora``
(adapter load/unload), ``prompts`` (chunked encoding), ``run`` (generate, Result, PNG metadata),
``lineage`` (Lineage). Import from ``pipeline.generate``; it re-exports the public names.
"""
from .lineage import Lineage
from .lora import adapters_present
from .models import PipelineCache, default_cache, default_device, default_dtype
from .prompts import encode_prompts, split_prompt
from .run import Result, estimate_seconds, generate, read_png_spec, write_results
from .spec import (
    BASE_MODEL_ENV, DEFAULT_BASE_MODEL, LINEAGE_FILE, MAX_IMAGES, MAX_SIDE, MAX_STEPS, PNG_META_KEY,
    PROMPT_FIELDS, VARY_KNOBS, GenerationSpec, ModelUnavailable, PromptTooLong, Recompile,
    default_base_model, vary,
)

__all__ = [
    "BASE_MODEL_ENV", "DEFAULT_BASE_MODEL", "LINEAGE_FILE", "MAX_IMAGES", "MAX_SIDE", "MAX_STEPS",
    "PNG_META_KEY", "PROMPT_FIELDS", "VARY_KNOBS", "GenerationSpec", "Lineage", "ModelUnavailable",
    "PipelineCache", "PromptTooLong", "Recompile", "Result", "adapters_present", "default_base_model",
    "default_cache", "default_device", "default_dtype", "encode_prompts", "estimate_seconds", "generate", "read_png_spec",
    "split_prompt", "vary", "write_results",
]
