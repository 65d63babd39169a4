"""Headshot presets: schemas, loading ``presets/*.yaml`` and prompt compilation.

Presets are data, not code (PhotoMaker's style templates in spirit): one YAML file per preset holds a
prompt template, the allowed values of five fields, plain-words negative constraints, sampler defaults
and the output framing. Files are validated at load; a broken one raises :class:`PresetError` naming
the file, the key path (``fields.background.default``) and the problem.

:func:`compile_prompt` turns a preset plus the user's choices into exactly the prompt and negative
prompt the generator sends, with token counts and <=75-token chunks for CLIP (never truncated).

Modules: ``errors`` (Problem, PresetError), ``schema`` (pydantic models), ``loading`` (YAML files,
cache) ``compile`` (prompts, token counts, chunks) and ``styleguide`` (team style guides). Import from this package.
"""
from .compile import (
    CHUNK_TOKENS, MAX_CHUNKS, CompiledPrompt, Tokenizer, compile_prompt, count_tokens, estimate_tokens, vary_values,
)
from .errors import PresetError, Problem
from .loading import PRESETS_DIR, get_preset, load_preset, load_presets
from .styleguide import (
    STYLEGUIDES_DIR, StyleGuide, guide_digest, load_style_guide, load_style_guides, parse_style_guide,
)
from .schema import (
    BUILTIN_PLACEHOLDERS, FIELD_NAMES, KNOWN_SCHEDULERS, RGB, Byte, FieldSpec, FieldValue, Id, OutputFraming, Preset,
    PromptText, SamplerDefaults,
)

__all__ = [
    "BUILTIN_PLACEHOLDERS", "CHUNK_TOKENS", "FIELD_NAMES", "KNOWN_SCHEDULERS", "MAX_CHUNKS", "PRESETS_DIR", "RGB",
    "Byte", "CompiledPrompt", "FieldSpec", "FieldValue", "Id", "OutputFraming", "Preset", "PresetError", "Problem",
    "PromptText", "SamplerDefaults", "Tokenizer", "compile_prompt", "count_tokens", "estimate_tokens", "get_preset",
    "load_preset", "load_presets", "vary_values",
    "STYLEGUIDES_DIR", "StyleGuide", "guide_digest", "load_style_guide", "load_style_guides", "parse_style_guide",
]
