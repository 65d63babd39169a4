"""Headshot presets: schemas, loading ``presets/*.yaml`` and prompt compilation.

Presets are data, not code (PhotoMaker's style templates in spirit): one YAML file per preset holds a
prompt template, the allowed values of five fields, plain-words negative constraints, sampler defaults
and the output framing. Files are validated at load; a broken one raises :class:`PresetError` naming
the file, the key path (``fields.background.default``) and the problem.

:func:`compile_prompt` turns a preset plus the user's choices into exactly the prompt and negative
prompt the generator sends, with token counts and <=75-token chunks for CLIP (never truncated).
"""
from __future__ import annotations

import functools
import logging
import math
import re
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Callable, Iterable, Mapping, Protocol, Sequence

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

log = logging.getLogger(__name__)

PRESETS_DIR = Path(__file__).resolve().parents[1] / "presets"
FIELD_NAMES = ("background", "wardrobe", "lighting", "expression", "framing")
BUILTIN_PLACEHOLDERS = ("trigger", "class_word")
# Both SDXL text encoders see 77 positions: BOS + 75 tokens + EOS. Longer prompts are split into
# 75-token chunks that the generator encodes one by one and concatenates (compel / A1111).
CHUNK_TOKENS = 75
# 225 tokens: a preset (~85-100 real tokens) plus generous edits. Past that, later chunks barely
# steer SDXL and the input is usually a pasted essay.
MAX_CHUNKS = 3
# diffusers schedulers that suit SDXL photo work with no extra package or distilled weights
# (DPMSolverSDE needs torchsde; LCM/TCD need distilled models).
KNOWN_SCHEDULERS = frozenset({
    "DPMSolverMultistepScheduler", "DPMSolverSinglestepScheduler", "EulerDiscreteScheduler",
    "EulerAncestralDiscreteScheduler", "DDIMScheduler", "UniPCMultistepScheduler", "HeunDiscreteScheduler",
    "KDPM2DiscreteScheduler", "LMSDiscreteScheduler", "PNDMScheduler", "DEISMultistepScheduler",
})
# CLIP does not understand negation: "no tie" in a prompt draws a tie. Negation goes in `negative`.
_NEGATION = re.compile(r"\b(no|not|without)\b", re.IGNORECASE)
# CLIP's pre-tokenizer: contractions, letter runs, single digits, single other symbols.
_PRETOKEN = re.compile(r"'s|'t|'re|'ve|'m|'ll|'d|[^\W\d_]+|\d|[^\s\w]|_", re.IGNORECASE)


@dataclass(frozen=True)
class Problem:
    source: str  # the preset file, or "preset 'name'" at compile time
    path: str  # key path, e.g. fields.background.default
    message: str

    def __str__(self) -> str:
        return f"{self.source}: {self.path}: {self.message}"


class PresetError(ValueError):
    """A broken or unknown preset, or a choice it does not allow. One line per problem."""

    def __init__(self, problems: Sequence[Problem]):
        self.problems = tuple(problems)
        super().__init__("\n".join(map(str, self.problems)))


def _fail(source: str, path: str, message: str) -> PresetError:
    return PresetError([Problem(source, path, message)])


def _rule(at: str, message: str) -> PydanticCustomError:
    """A validation error about the sub-key `at` of the value being validated (kept in ctx)."""
    return PydanticCustomError("preset_rule", message.replace("{", "{{").replace("}", "}}"), {"at": at})


def _clean(text: str) -> str:
    return " ".join(text.split())


def _prompt_text(text: str) -> str:
    if not (text := _clean(text)):
        raise ValueError("must not be empty")
    if m := _NEGATION.search(text):
        raise ValueError(f"contains {m.group(0)!r}: CLIP ignores negation, so put it in `negative`")
    return text


def _constraint(text: str) -> str:
    if not re.fullmatch(r"no\s+\S.*", text := _clean(text), re.IGNORECASE):
        raise ValueError(f"{text!r} must read 'no <thing>', e.g. 'no heavy makeup'")
    return text


def _negative_phrase(constraint: str) -> str:
    """'no heavy makeup' -> 'heavy makeup': the negative prompt lists the things to avoid."""
    return re.sub(r"^no\s+", "", _clean(constraint), flags=re.IGNORECASE)


class _FrozenDict(dict):
    """A read-only dict: presets are cached and shared, so their mappings must not change."""

    def _read_only(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("preset data is read-only")

    __setitem__ = __delitem__ = __ior__ = clear = pop = popitem = setdefault = update = _read_only

    def __reduce__(self) -> tuple:
        return type(self), (dict(self),)

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(tuple(self.items()))


Id = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_]*$")]  # travels through --set F=V and --vary F=A,B
PromptText = Annotated[str, AfterValidator(_prompt_text)]
Byte = Annotated[int, Field(ge=0, le=255)]
RGB = tuple[Byte, Byte, Byte]
_ReadOnly = AfterValidator(_FrozenDict)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class FieldValue(_Frozen):
    id: Id
    text: PromptText  # what this value contributes to the prompt
    label: str | None = None  # for the UI
    rgb: RGB | None = None  # backgrounds: the backdrop's sRGB, for the review step's ΔE

    @property
    def display_label(self) -> str:
        return self.label or self.id.replace("_", " ").capitalize()


class FieldSpec(_Frozen):
    values: tuple[FieldValue, ...] = Field(min_length=1)  # declared before `default`, which checks it
    default: str

    @field_validator("values")
    @classmethod
    def _unique_ids(cls, values: tuple[FieldValue, ...]) -> tuple[FieldValue, ...]:
        ids = [v.id for v in values]
        if (dup := next((i for i, v in enumerate(ids) if v in ids[:i]), None)) is not None:
            raise _rule(f"{dup}.id", f"duplicate value id {ids[dup]!r}")
        return values

    @field_validator("default")
    @classmethod
    def _default_is_a_value(cls, default: str, info: ValidationInfo) -> str:
        if (values := info.data.get("values")) and default not in (ids := [v.id for v in values]):
            raise ValueError(f"{default!r} is not one of the values: {', '.join(ids)}")
        return default

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(v.id for v in self.values)

    def get(self, value_id: str) -> FieldValue:
        return next(v for v in self.values if v.id == value_id)


class SamplerDefaults(_Frozen):
    steps: int = Field(ge=1, le=150)
    guidance_scale: float = Field(ge=0, le=30)
    scheduler: str
    # Keyword arguments for Scheduler.from_config, e.g. use_karras_sigmas: true.
    scheduler_options: Annotated[Mapping[str, bool | int | float | str], _ReadOnly] = _FrozenDict()
    width: int = Field(ge=512, le=2048)
    height: int = Field(ge=512, le=2048)
    lora_scale: float = Field(ge=0, le=2)

    @field_validator("scheduler")
    @classmethod
    def _known_scheduler(cls, name: str) -> str:
        if name not in KNOWN_SCHEDULERS:
            raise ValueError(f"unknown scheduler {name!r}; known: {', '.join(sorted(KNOWN_SCHEDULERS))}")
        return name

    @field_validator("width", "height")
    @classmethod
    def _latent_aligned(cls, side: int, info: ValidationInfo) -> int:
        # The VAE downsamples by 8, so nothing else can be generated; SDXL trained on 64-aligned
        # buckets, so other multiples of 8 work but compose worse.
        if side % 8:
            raise ValueError(f"{side} is not a multiple of 8 (SDXL needs multiples of 8; 64 preferred)")
        if side % 64:
            log.warning("sampler.%s=%d is not a multiple of 64; SDXL composes best on 64-aligned sizes",
                        info.field_name, side)
        return side


class OutputFraming(_Frozen):
    aspect: str  # "W:H" of the delivered crop, e.g. "1:1", "4:5"
    eye_line: float = Field(gt=0, lt=1)  # height of the eyes, as a fraction of the frame from the top
    head_height: float = Field(gt=0, lt=1)  # crown to chin, as a fraction of the frame height
    background_rgb: RGB  # the default backdrop's sRGB, for the review step's ΔE
    circle_safe: bool = False  # the crop must survive a circular avatar mask (LinkedIn, Slack)

    @field_validator("aspect", mode="before")
    @classmethod
    def _aspect(cls, aspect: Any) -> Any:
        if isinstance(aspect, int):  # YAML 1.1 reads an unquoted 4:5 as the base-60 number 245
            raise ValueError('write the aspect in quotes, e.g. "4:5" (unquoted, YAML reads it as a number)')
        if not isinstance(aspect, str) or not re.fullmatch(r"[1-9]\d*:[1-9]\d*", aspect):
            raise ValueError(f'{aspect!r} is not an aspect like "4:5"')
        return aspect

    @field_validator("head_height")
    @classmethod
    def _head_fits(cls, head: float, info: ValidationInfo) -> float:
        # The eyes sit about halfway between crown and chin: the head spans eye_line ± head/2.
        eye = info.data.get("eye_line")
        if eye is not None and not (eye - head / 2 >= 0 and eye + head / 2 <= 1):
            raise ValueError(f"{head} with eye_line {eye} puts the {'crown' if eye < head / 2 else 'chin'} "
                             "outside the frame")
        return head

    @property
    def aspect_ratio(self) -> float:
        w, h = map(int, self.aspect.split(":"))
        return w / h


class Preset(_Frozen):
    # Field order matters: validators of `template` and `output` read the already-validated `fields`.
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")  # must match the file name
    title: str = Field(min_length=1)
    description: str = ""
    version: int = Field(ge=1)  # bump when the prompt text changes: results record name + version
    fields: Annotated[Mapping[Id, FieldSpec], _ReadOnly]
    template: PromptText
    negative: tuple[Annotated[str, AfterValidator(_constraint)], ...] = ()  # plain words, "no ..."
    sampler: SamplerDefaults
    output: OutputFraming
    export_specs: tuple[Id, ...] | None = None  # names of export specs, overriding the defaults

    @field_validator("fields")
    @classmethod
    def _all_fields(cls, fields: Mapping[str, FieldSpec]) -> Mapping[str, FieldSpec]:
        if missing := [f for f in FIELD_NAMES if f not in fields]:
            raise ValueError(f"missing field(s) {', '.join(missing)}; every preset defines {', '.join(FIELD_NAMES)}")
        return fields

    @field_validator("template")
    @classmethod
    def _placeholders(cls, template: str, info: ValidationInfo) -> str:
        try:
            parsed = [(name, spec, conv) for _, name, spec, conv in string.Formatter().parse(template) if name is not None]
        except ValueError as e:  # unbalanced braces
            raise ValueError(f"bad placeholder syntax: {e}") from None
        if any(spec or conv for _, spec, conv in parsed):
            raise ValueError("placeholders take no format spec or conversion: write {background}")
        names = [name for name, _, _ in parsed]
        known = BUILTIN_PLACEHOLDERS + tuple(info.data.get("fields") or FIELD_NAMES)
        braced = lambda ns: ", ".join("{%s}" % n for n in ns)  # noqa: E731
        if unknown := [n for n in names if n not in known]:
            raise ValueError(f"unknown placeholder(s) {braced(unknown)}; known: {braced(known)}")
        if unused := [n for n in known if n not in names]:
            raise ValueError(f"missing placeholder(s) {braced(unused)}: use the trigger, the class word and every field")
        return template

    @field_validator("negative")
    @classmethod
    def _unique_constraints(cls, negative: tuple[str, ...]) -> tuple[str, ...]:
        keys = [_negative_phrase(c).lower() for c in negative]
        if (dup := next((i for i, k in enumerate(keys) if k in keys[:i]), None)) is not None:
            raise _rule(str(dup), f"duplicate constraint {negative[dup]!r}")
        return negative

    @field_validator("output")
    @classmethod
    def _backdrop_matches(cls, output: OutputFraming, info: ValidationInfo) -> OutputFraming:
        if (fields := info.data.get("fields")) is None:
            return output
        default = fields["background"].get(fields["background"].default)
        if default.rgb is not None and default.rgb != output.background_rgb:
            raise _rule("background_rgb", f"{list(output.background_rgb)} differs from the default background "
                                          f"{default.id!r}, whose rgb is {list(default.rgb)}")
        return output


# --- loading -------------------------------------------------------------------------------------

class _UniqueKeyLoader(yaml.SafeLoader):
    """safe_load, except that a repeated key is an error instead of silently keeping the last one."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        keys = [self.construct_object(k, deep=deep) for k, _ in node.value]
        for i, key in enumerate(keys):
            if isinstance(key, str | int | float | bool) and key in keys[:i]:
                mark = node.value[i][0].start_mark
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", mark)
        return super().construct_mapping(node, deep=deep)


# Which model holds the keys at a location (dict keys and list indices written as "*").
_MODELS_AT: dict[tuple, type[BaseModel]] = {
    (): Preset, ("sampler",): SamplerDefaults, ("output",): OutputFraming,
    ("fields", "*"): FieldSpec, ("fields", "*", "values", "*"): FieldValue,
}


def _problems(source: str, error: ValidationError) -> list[Problem]:
    problems = []
    for e in error.errors(include_url=False):
        loc = [p for p in e["loc"] if p != "[key]"] + (e["ctx"]["at"].split(".") if "at" in e.get("ctx", {}) else [])
        message = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            parent = loc[:-1]
            model = _MODELS_AT.get(tuple("*" if i % 2 and parent[0] == "fields" else p for i, p in enumerate(parent)))
            message = "unknown key" + (f"; allowed keys: {', '.join(model.model_fields)}" if model else "")
        elif e["type"] == "missing":
            message = "required key is missing"
        path = "".join(f"[{p}]" if str(p).isdigit() else f".{p}" for p in loc).lstrip(".")
        problems.append(Problem(source, path or "(root)", message))
    return problems


def load_preset(path: str | Path) -> Preset:
    """Load and validate one preset file; PresetError names the file, key path and problem."""
    path = Path(path)
    source = str(path)
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader)
    except OSError as e:
        raise _fail(source, "(file)", f"cannot read: {e.strerror or e}") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(yaml)"
        raise _fail(source, where, f"invalid YAML: {getattr(e, 'problem', None) or e}") from None
    if not isinstance(data, dict):
        got = "an empty file" if data is None else f"a {type(data).__name__}"
        raise _fail(source, "(root)", f"expected a mapping of preset keys (name, title, template, ...), got {got}")
    try:
        preset = Preset.model_validate(data)
    except ValidationError as e:
        raise PresetError(_problems(source, e)) from None
    if preset.name != path.stem:
        raise _fail(source, "name", f"{preset.name!r} does not match the file name {path.name!r}")
    return preset


@functools.lru_cache(maxsize=8)
def _load_files(files: tuple[tuple[str, int, int], ...]) -> tuple[Preset, ...]:
    presets, problems = [], []
    for file, _mtime, _size in files:
        try:
            presets.append(load_preset(file))
        except PresetError as e:
            problems.extend(e.problems)
    if problems:  # report every broken file at once
        raise PresetError(problems)
    return tuple(presets)


def load_presets(directory: str | Path = PRESETS_DIR) -> dict[str, Preset]:
    """Every ``*.yaml`` directly in `directory` (subfolders, e.g. style guides, are not read), by name.

    Cached on the files' paths, modification times and sizes, so an edited file is reloaded.
    """
    if not (directory := Path(directory)).is_dir():
        raise _fail(str(directory), "(directory)", "not a directory")
    files = tuple((str(f), (st := f.stat()).st_mtime_ns, st.st_size) for f in sorted(directory.glob("*.yaml")))
    return {p.name: p for p in _load_files(files)}


def get_preset(name: str, directory: str | Path = PRESETS_DIR) -> Preset:
    if name not in (presets := load_presets(directory)):
        raise _fail(str(directory), "name", f"unknown preset {name!r}; known presets: {', '.join(sorted(presets)) or '(none)'}")
    return presets[name]


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
