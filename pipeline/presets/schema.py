"""Preset schema: the pydantic models of a preset file, their validators and the fixed field names."""
from __future__ import annotations

import logging
import re
import string
from typing import Annotated, Any, Literal, Mapping

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError

log = logging.getLogger(__name__)

FIELD_NAMES = ("background", "wardrobe", "lighting", "expression", "framing")
BUILTIN_PLACEHOLDERS = ("trigger", "class_word")
# diffusers schedulers that suit SDXL photo work with no extra package or distilled weights
# (DPMSolverSDE needs torchsde; LCM/TCD need distilled models).
KNOWN_SCHEDULERS = frozenset({
    "DPMSolverMultistepScheduler", "DPMSolverSinglestepScheduler", "EulerDiscreteScheduler",
    "EulerAncestralDiscreteScheduler", "DDIMScheduler", "UniPCMultistepScheduler", "HeunDiscreteScheduler",
    "KDPM2DiscreteScheduler", "LMSDiscreteScheduler", "PNDMScheduler", "DEISMultistepScheduler",
})
# CLIP does not understand negation: "no tie" in a prompt draws a tie. Negation goes in `negative`.
_NEGATION = re.compile(r"\b(no|not|without)\b", re.IGNORECASE)


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


def aspect_text(aspect: Any) -> str:
    """A "W:H" aspect as written in YAML (presets and style guides share the rule)."""
    if isinstance(aspect, int):  # YAML 1.1 reads an unquoted 4:5 as the base-60 number 245
        raise ValueError('write the aspect in quotes, e.g. "4:5" (unquoted, YAML reads it as a number)')
    if not isinstance(aspect, str) or not re.fullmatch(r"[1-9]\d{0,2}:[1-9]\d{0,2}", aspect):
        raise ValueError(f'{aspect!r} is not an aspect like "4:5"')
    return aspect


class OutputFraming(_Frozen):
    aspect: str  # "W:H" of the delivered crop, e.g. "1:1", "4:5"
    eye_line: float = Field(gt=0, lt=1)  # height of the eyes, as a fraction of the frame from the top
    head_height: float = Field(gt=0, lt=1)  # crown to chin, as a fraction of the frame height
    background_rgb: RGB  # the default backdrop's sRGB, for the review step's ΔE
    circle_safe: bool = False  # the crop must survive a circular avatar mask (LinkedIn, Slack)

    _aspect = field_validator("aspect", mode="before")(classmethod(lambda cls, v: aspect_text(v)))

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


SpecName = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")]  # an export spec, e.g. web-bio
Size = tuple[Annotated[int, Field(ge=16, le=8192)], Annotated[int, Field(ge=16, le=8192)]]


class SpecOverride(_Frozen):
    """What a preset or style guide may change in a named export spec (not its aspect or circle
    safety, which the framing depends on)."""
    sizes: tuple[Size, ...] | None = Field(default=None, min_length=1, max_length=8)
    format: Literal["JPEG", "PNG", "WEBP"] | None = None
    quality: int | None = Field(default=None, ge=1, le=100)
    min_side: int | None = Field(default=None, ge=0, le=8192)

    def changes(self) -> dict:
        return self.model_dump(exclude_none=True)


def resolve_export_overrides(overrides: Mapping[str, SpecOverride] | None):
    """The export spec table with a preset's or style guide's overrides applied."""
    from ..export import resolve_specs

    return resolve_specs({k: v.changes() for k, v in (overrides or {}).items()})


def check_export_specs(names: tuple[str, ...] | None, overrides: Mapping[str, SpecOverride] | None) -> None:
    """Names must be known specs; override sizes must keep each spec's aspect."""
    from ..export import EXPORT_SPECS

    unknown = [n for n in (*(names or ()), *(overrides or {})) if n not in EXPORT_SPECS]
    if unknown:
        raise ValueError(f"unknown export spec(s) {', '.join(unknown)}; known: {', '.join(sorted(EXPORT_SPECS))}")
    resolve_export_overrides(overrides)  # ExportSpec checks sizes vs aspect


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
    export_specs: tuple[SpecName, ...] | None = Field(default=None, min_length=1)  # the default file specs
    export_overrides: Annotated[Mapping[SpecName, SpecOverride], _ReadOnly] | None = None  # e.g. a larger linkedin

    @model_validator(mode="after")
    def _known_export_specs(self) -> "Preset":
        check_export_specs(self.export_specs, self.export_overrides)
        return self

    def resolved_export_specs(self):
        return resolve_export_overrides(self.export_overrides)

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
