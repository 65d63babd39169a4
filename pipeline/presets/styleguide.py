"""Team style guides: one visual standard for every portrait on a team page (``presets/styleguides/*.yaml``).

A guide is data, validated like a preset: framing (eye line, head size, headroom), 2-4 approved
backgrounds, a colour grade, wardrobe guidance (shown, not enforced), output specs and naming, and
governance (input retention, approvers, consent notice). Guides are versioned: a portrait records the
guide name *and* version it was made with, and the team store keeps every version, so editing a guide
never silently changes approved portraits.
"""
from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Annotated, Literal, Mapping, Union

from pydantic import Field, ValidationError, field_validator, model_validator

from .errors import PresetError, _fail
from .loading import _problems, safe_yaml
from .schema import (RGB, Id, SpecName, SpecOverride, _Frozen, aspect_text, check_export_specs,
                     resolve_export_overrides)

STYLEGUIDES_DIR = Path(__file__).resolve().parents[2] / "presets" / "styleguides"
ASSETS_DIR = Path(__file__).resolve().parents[2] / "assets"
MAX_GUIDE_BYTES = 64 * 1024  # a guide is a page of YAML; anything bigger is a mistake or an attack
MIN_HEADROOM = 0.03  # crown this close to the top edge looks cramped, and hair gets cut in a circle mask
_NAME_TEMPLATE_KEYS = {"last", "first", "spec", "w", "h", "ext", "index"}


class Framing(_Frozen):
    """The crop every member gets. Fractions of the frame height, measured from the top.

    Give any two of ``eye_line``, ``head_height`` and ``headroom`` (or all three, consistent): the
    eyes sit half-way between crown and chin, so ``headroom = eye_line - head_height / 2``.
    """
    aspect: str = "4:5"
    eye_line: float | None = Field(default=None, gt=0, lt=1)
    head_height: float | None = Field(default=None, gt=0, lt=1)
    headroom: float | None = Field(default=None, ge=0, lt=1)
    circle_safe: bool = False

    _aspect = field_validator("aspect", mode="before")(classmethod(lambda cls, v: aspect_text(v)))

    @model_validator(mode="after")
    def _two_of_three(self) -> "Framing":
        e, h, r = self.eye_line, self.head_height, self.headroom
        given = sum(v is not None for v in (e, h, r))
        if given < 2:
            raise ValueError("give two of eye_line, head_height and headroom")
        if e is None:
            e = r + h / 2
        elif h is None:
            h = 2 * (e - r)
        elif r is None:
            r = e - h / 2
        elif abs(r - (e - h / 2)) > 0.01:
            raise ValueError(f"headroom {r} does not match eye_line - head_height/2 = {e - h / 2:.3f}")
        if not (0 < h < 1 and 0 < e < 1):
            raise ValueError("the values put the head outside the frame")
        if r < MIN_HEADROOM:
            raise ValueError(f"headroom {r:.3f} is under {MIN_HEADROOM}: the crown would touch the top edge")
        if e + h / 2 > 0.97:
            raise ValueError("the chin would sit at the bottom edge: lower head_height or raise eye_line")
        object.__setattr__(self, "eye_line", round(e, 4))
        object.__setattr__(self, "head_height", round(h, 4))
        object.__setattr__(self, "headroom", round(r, 4))
        return self

    @property
    def aspect_ratio(self) -> float:
        w, h = map(int, self.aspect.split(":"))
        return w / h


class SolidBackground(_Frozen):
    id: Id
    kind: Literal["solid"]
    label: str | None = None
    rgb: RGB


class GradientBackground(_Frozen):
    """Vertical gradient, ``top`` to ``bottom`` (a studio sweep lit from above)."""
    id: Id
    kind: Literal["gradient"]
    label: str | None = None
    top: RGB
    bottom: RGB

    @property
    def rgb(self) -> tuple[int, int, int]:
        """The mean colour, used as the ΔE reference."""
        return tuple(int(round((a + b) / 2)) for a, b in zip(self.top, self.bottom))


class ImageBackground(_Frozen):
    """A (blurred) backdrop photo from ``assets/``; ``blur`` is a Gaussian radius in px at 1024 px."""
    id: Id
    kind: Literal["image"]
    label: str | None = None
    image: str
    blur: float = Field(default=0.0, ge=0, le=64)

    @field_validator("image")
    @classmethod
    def _inside_assets(cls, image: str) -> str:
        # Only files shipped in assets/: a guide uploaded by an admin must not read arbitrary paths.
        if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_./-]*\.(jpg|jpeg|png|webp)", image) or ".." in image:
            raise ValueError(f"{image!r} must be a relative .jpg/.png/.webp path inside assets/")
        if not (ASSETS_DIR / image).is_file():
            raise ValueError(f"{image!r} is not a file in assets/")
        return image

    @property
    def path(self) -> Path:
        return ASSETS_DIR / self.image


Background = Annotated[Union[SolidBackground, GradientBackground, ImageBackground], Field(discriminator="kind")]


class ColourGrade(_Frozen):
    """Targets for the face region: white balance (correlated colour temperature, K), exposure
    (mean CIE L* of the face skin, 0-100) and a saturation multiplier for the whole portrait."""
    white_balance_k: float = Field(default=5500, ge=3000, le=9000)
    exposure_l: float = Field(default=62, ge=30, le=85)
    saturation: float = Field(default=1.0, ge=0.0, le=2.0)


class Output(_Frozen):
    export_specs: tuple[SpecName, ...] = Field(default=("linkedin", "web-bio", "directory"), min_length=1)
    name_template: str = "{last}_{first}_{spec}_{w}x{h}.{ext}"

    export_overrides: Mapping[SpecName, SpecOverride] | None = None

    @model_validator(mode="after")
    def _known_specs(self) -> "Output":
        check_export_specs(self.export_specs, self.export_overrides)
        return self

    def resolved_specs(self):
        return resolve_export_overrides(self.export_overrides)

    @field_validator("name_template")
    @classmethod
    def _template(cls, template: str) -> str:
        keys = set(re.findall(r"{([^{}]*)}", template))
        if unknown := keys - _NAME_TEMPLATE_KEYS:
            raise ValueError(f"unknown placeholder(s) {sorted(unknown)}; allowed: {sorted(_NAME_TEMPLATE_KEYS)}")
        if not {"spec", "w", "h"} <= keys and "index" not in keys:
            raise ValueError("the template must tell files apart: include {spec}, {w} and {h}")
        if "/" in template or "\\" in template:
            raise ValueError("the template is a file name, not a path")
        return template


Username = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,95}$")]


class Governance(_Frozen):
    retention_days: int = Field(default=30, ge=1, le=3650)  # input photos are deleted after this
    approvers: tuple[Username, ...] = Field(min_length=1)  # Hugging Face user names (or local admin names)
    notice_version: str = Field(default="1", min_length=1, max_length=32)  # the consent notice members accept
    uses: tuple[Id, ...] = ("team_page", "directory", "internal_chat")  # what members consent to


class StyleGuide(_Frozen):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    title: str = Field(min_length=1, max_length=120)
    version: int = Field(ge=1)
    framing: Framing
    backgrounds: tuple[Background, ...] = Field(min_length=1, max_length=4)
    default_background: Id | None = None
    colour: ColourGrade = ColourGrade()
    wardrobe: str = Field(default="", max_length=2000)
    output: Output = Output()
    governance: Governance

    @field_validator("backgrounds")
    @classmethod
    def _unique_ids(cls, bgs: tuple) -> tuple:
        ids = [b.id for b in bgs]
        if dup := [i for n, i in enumerate(ids) if i in ids[:n]]:
            raise ValueError(f"duplicate background id(s) {', '.join(dup)}")
        return bgs

    @model_validator(mode="after")
    def _default_known(self) -> "StyleGuide":
        ids = [b.id for b in self.backgrounds]
        if self.default_background is None:
            object.__setattr__(self, "default_background", ids[0])
        elif self.default_background not in ids:
            raise ValueError(f"default_background {self.default_background!r} is not one of {', '.join(ids)}")
        return self

    def background(self, bg_id: str | None = None):
        bg_id = bg_id or self.default_background
        for b in self.backgrounds:
            if b.id == bg_id:
                return b
        raise PresetError([_problem(self.name, "backgrounds", f"unknown background {bg_id!r}; "
                                    f"approved: {', '.join(b.id for b in self.backgrounds)}")])

    @property
    def key(self) -> str:
        """``name@version``: what a portrait records about the guide it was made with."""
        return f"{self.name}@{self.version}"

    def framing_spec(self):
        from ..framing import FramingSpec

        f = self.framing
        return FramingSpec(f.aspect_ratio, f.eye_line, f.head_height, f"{self.name}@{self.version}")


def _problem(source: str, path: str, message: str):
    from .errors import Problem

    return Problem(source, path, message)


def parse_style_guide(text: str | bytes, source: str = "style guide") -> StyleGuide:
    """Validate YAML text (an uploaded or stored guide); errors name the key path."""
    if isinstance(text, bytes):
        if len(text) > MAX_GUIDE_BYTES:
            raise _fail(source, "(file)", f"{len(text)} bytes; a style guide is at most {MAX_GUIDE_BYTES}")
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise _fail(source, "(file)", "not UTF-8 text") from None
    if len(text) > MAX_GUIDE_BYTES:
        raise _fail(source, "(file)", f"{len(text)} characters; a style guide is at most {MAX_GUIDE_BYTES}")
    data = safe_yaml(text, source)
    if not isinstance(data, dict):
        got = "an empty file" if data is None else f"a {type(data).__name__}"
        raise _fail(source, "(root)", f"expected a mapping of style guide keys (name, version, framing, ...), got {got}")
    try:
        return StyleGuide.model_validate(data)
    except ValidationError as e:
        raise PresetError(_problems(source, e)) from None


def load_style_guide(path: str | Path) -> StyleGuide:
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_GUIDE_BYTES:
            raise _fail(str(path), "(file)", f"{size} bytes; a style guide is at most {MAX_GUIDE_BYTES}")
        raw = path.read_bytes()
    except OSError as e:
        raise _fail(str(path), "(file)", f"cannot read: {e.strerror or e}") from None
    guide = parse_style_guide(raw, str(path))
    if guide.name != path.stem:
        raise _fail(str(path), "name", f"{guide.name!r} does not match the file name {path.name!r}")
    return guide


def load_style_guides(directory: str | Path = STYLEGUIDES_DIR) -> dict[str, StyleGuide]:
    return {g.name: g for g in map(load_style_guide, sorted(Path(directory).glob("*.yaml")))}


def guide_digest(text: str) -> str:
    """sha256 of a guide's YAML text: stored with each version so an edit is a new version."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
