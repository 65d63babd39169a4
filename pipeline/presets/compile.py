"""Prompt compilation: a preset plus the user's choices -> prompt, negative prompt, token counts, chunks."""
from __future__ import annotations

import functools
import logging
import math
import re
from typing import Annotated, Callable, Iterable, Mapping, Protocol

from .errors import _fail
from .loading import get_preset
from .schema import RGB, Preset, _clean, _Frozen, _negative_phrase, _ReadOnly

log = logging.getLogger(__name__)

# Both SDXL text encoders see 77 positions: BOS + 75 tokens + EOS. Longer prompts are split into
# 75-token chunks that the generator encodes one by one and concatenates (compel / A1111).
CHUNK_TOKENS = 75
# 225 tokens: a preset (~85-100 real tokens) plus generous edits. Past that, later chunks barely
# steer SDXL and the input is usually a pasted essay.
MAX_CHUNKS = 3
# CLIP's pre-tokenizer: contractions, letter runs, single digits, single other symbols.
_PRETOKEN = re.compile(r"'s|'t|'re|'ve|'m|'ll|'d|[^\W\d_]+|\d|[^\s\w]|_", re.IGNORECASE)


def vary_values(preset: Preset | str, field: str) -> tuple[str, ...]:
    """The allowed value ids of one field, in preset order (one-variable iteration walks these)."""
    preset = get_preset(preset) if isinstance(preset, str) else preset
    if field not in preset.fields:
        raise _fail(f"preset {preset.name!r}", f"fields.{field}", f"unknown field; fields: {', '.join(preset.fields)}")
    return preset.fields[field].ids


# --- tokens and chunks -----------------------------------------------------------------------------

class Tokenizer(Protocol):
    """What compile_prompt needs from a tokenizer; transformers' CLIPTokenizer fits."""

    def tokenize(self, text: str) -> list[str]: ...


def estimate_tokens(text: str) -> int:
    """A tokenizer-free, deliberately high estimate of CLIP's token count (without BOS/EOS).

    Rule: split as CLIP's pre-tokenizer does; a letter run counts ceil(letters / 4); each digit,
    contraction ('s, 're, ...) and other symbol counts 1. Against the real CLIP BPE vocabulary (both
    SDXL tokenizers share it) it overestimates every field value of every shipped preset, with and
    without edits, by 1.3-1.5x, and a list of harder photo words (camera models, fabrics, f-numbers)
    by 1.15x. It can fall short on rare non-English names (0.8x): the generator passes the tokenizer.
    """
    return sum(math.ceil(len(t) / 4) if t[0].isalpha() else 1 for t in _PRETOKEN.findall(text))


def count_tokens(text: str, tokenizer: Tokenizer | None = None) -> int:
    """CLIP tokens in `text` without BOS/EOS: exact with `tokenizer`, else :func:`estimate_tokens`.

    CLIP's BPE never merges across whitespace, so counting word by word is exact (and keeps
    transformers from warning about inputs longer than 77)."""
    if tokenizer is None:
        return estimate_tokens(text)
    return sum(len(tokenizer.tokenize(word)) for word in text.split())


def _chunks(text: str, count: Callable[[str], int], limit: int = CHUNK_TOKENS) -> tuple[str, ...]:
    """Greedy split into chunks of <= `limit` tokens, breaking after commas; a comma-free run longer
    than a chunk breaks between words. `text` has single spaces, so ' '.join(chunks) == text."""
    pieces: list[tuple[str, int]] = []
    for segment in re.split(r"(?<=,) ", text) if text else []:
        n = count(segment)
        pieces += [(segment, n)] if n <= limit else [(w, count(w)) for w in segment.split(" ")]
    chunks: list[list[str]] = []
    used = limit
    for piece, n in pieces:
        if n > limit:
            raise ValueError(f"{piece[:40]!r} alone is {n} tokens, more than one {limit}-token chunk")
        if used + n > limit:
            chunks.append([])
            used = 0
        chunks[-1].append(piece)
        used += n
    return tuple(" ".join(c) for c in chunks)


# --- compilation -----------------------------------------------------------------------------------

class CompiledPrompt(_Frozen):
    """Exactly what the generator sends, and what it was made from. Serialises with model_dump()."""

    preset: str
    preset_version: int
    fields: Annotated[Mapping[str, str], _ReadOnly]  # every field's resolved value id
    trigger: str
    class_word: str
    prompt: str
    negative_prompt: str
    negative_constraints: tuple[str, ...]  # plain words, "no ..."
    prompt_chunks: tuple[str, ...]  # each <= CHUNK_TOKENS; " ".join(prompt_chunks) == prompt
    negative_chunks: tuple[str, ...]
    token_counts: Annotated[Mapping[str, int], _ReadOnly]  # {"prompt": n, "negative": n}, without BOS/EOS
    token_counter: str  # "tokenizer" (exact) or "estimate" (see estimate_tokens)
    background_rgb: RGB  # the chosen backdrop's colour, for the review step's ΔE
    user_prompt_edits: str | None = None
    prompt_overridden: bool = False

    @property
    def chunk_count(self) -> int:
        """Chunks to encode for BOTH prompts: classifier-free guidance needs equal lengths, so the
        generator pads the shorter list with empty-string chunks."""
        return max(len(self.prompt_chunks), len(self.negative_chunks), 1)


def compile_prompt(
    preset: Preset | str,
    fields: Mapping[str, str] | None = None,
    user_prompt_edits: str | None = None,
    user_negative_edits: Iterable[str] | None = None,
    trigger: str = "sks",
    class_word: str = "person",
    tokenizer: Tokenizer | None = None,
    *,
    prompt_override: str | None = None,
    remove_negative: Iterable[str] | None = None,
    max_chunks: int = MAX_CHUNKS,
) -> CompiledPrompt:
    """Fill a preset (or a preset name) with the user's choices.

    - `fields`: field -> value id; fields left out (or None) take the preset's default.
    - `user_prompt_edits`: free text appended to the compiled prompt (after ", ").
    - `prompt_override`: replaces the compiled prompt entirely; must contain `trigger`; not
      combinable with `user_prompt_edits`.
    - `user_negative_edits`: extra constraints, "no hats" or "hats"; repeats are dropped.
    - `remove_negative`: preset constraints to drop, "no heavy makeup" or "heavy makeup".
    - `tokenizer`: counts tokens exactly (pass the pipeline's CLIPTokenizer); else an estimate.
    Text needing more than `max_chunks` chunks of 75 tokens raises PresetError with its count.
    """
    preset = get_preset(preset) if isinstance(preset, str) else preset
    source = f"preset {preset.name!r}"
    if not re.fullmatch(r"[^\s,{}]+", trigger or ""):
        raise _fail(source, "trigger", f"{trigger!r} must be one word without commas or braces")
    if not re.fullmatch(r"[^,{}]*\w[^,{}]*", class_word or ""):
        raise _fail(source, "class_word", f"{class_word!r} must be words without commas or braces")
    class_word = _clean(class_word)

    fields = dict(fields or {})
    for name, value_id in fields.items():
        if name not in preset.fields:
            raise _fail(source, f"fields.{name}", f"unknown field; fields: {', '.join(preset.fields)}")
        if value_id is not None and value_id not in preset.fields[name].ids:
            raise _fail(source, f"fields.{name}", f"{value_id!r} is not allowed; allowed: {', '.join(preset.fields[name].ids)}")
    resolved = {name: fields.get(name) or spec.default for name, spec in preset.fields.items()}
    chosen = {name: preset.fields[name].get(value_id) for name, value_id in resolved.items()}
    prompt = preset.template.format_map({"trigger": trigger, "class_word": class_word,
                                         **{name: value.text for name, value in chosen.items()}})

    edits = _clean(user_prompt_edits or "").strip(", ") or None
    if prompt_override is not None:
        if edits:
            raise _fail(source, "prompt_override", "give prompt_override or user_prompt_edits, not both")
        prompt = _clean(prompt_override)
        if not re.search(rf"(?<!\w){re.escape(trigger)}(?!\w)", prompt, re.IGNORECASE):
            raise _fail(source, "prompt_override", f"must contain the trigger {trigger!r}, or the person is lost")
    elif edits:
        prompt = f"{prompt}, {edits}"

    remove_negative = [remove_negative] if isinstance(remove_negative, str) else remove_negative or ()
    user_negative_edits = [user_negative_edits] if isinstance(user_negative_edits, str) else user_negative_edits or ()
    constraints = list(preset.negative)
    keys = [_negative_phrase(c).lower() for c in constraints]
    for item in remove_negative:
        if (key := _negative_phrase(item).lower()) not in keys:
            raise _fail(source, "remove_negative", f"{item!r} is not among the constraints: {', '.join(constraints) or '(none)'}")
        i = keys.index(key)
        del constraints[i], keys[i]
    for item in user_negative_edits:
        if (phrase := _negative_phrase(item)) and phrase.lower() not in keys:
            constraints.append(f"no {phrase}")
            keys.append(phrase.lower())
    negative_prompt = ", ".join(_negative_phrase(c) for c in constraints)

    word_tokens = functools.lru_cache(maxsize=None)(lambda word: count_tokens(word, tokenizer))
    count = lambda text: sum(word_tokens(w) for w in text.split())  # noqa: E731
    how = "estimated" if tokenizer is None else "counted"
    counts, chunks = {}, {}
    for key, path, text in (("prompt", "prompt", prompt), ("negative", "negative_prompt", negative_prompt)):
        counts[key] = count(text)
        try:
            chunks[key] = _chunks(text, count)
        except ValueError as e:
            raise _fail(source, path, str(e)) from None
        if len(chunks[key]) > max_chunks:
            raise _fail(source, path, f"{counts[key]} tokens ({how}) need {len(chunks[key])} chunks of {CHUNK_TOKENS}, "
                                      f"over the limit of {max_chunks} ({max_chunks * CHUNK_TOKENS} tokens): "
                                      "shorten the edits or drop constraints")
    log.debug("compiled %s v%d: %d + %d tokens (%s)", preset.name, preset.version, counts["prompt"], counts["negative"], how)
    return CompiledPrompt(
        preset=preset.name, preset_version=preset.version, fields=resolved, trigger=trigger, class_word=class_word,
        prompt=prompt, negative_prompt=negative_prompt, negative_constraints=tuple(constraints),
        prompt_chunks=chunks["prompt"], negative_chunks=chunks["negative"], token_counts=counts,
        token_counter="estimate" if tokenizer is None else "tokenizer",
        background_rgb=chosen["background"].rgb or preset.output.background_rgb,
        user_prompt_edits=None if prompt_override is not None else edits, prompt_overridden=prompt_override is not None)
