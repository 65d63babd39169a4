"""Named export specs, declared as data in ``presets/export/specs.yaml``, and their overrides."""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from types import MappingProxyType
from typing import Mapping

import yaml

FORMATS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp"}
MIME = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}


@dataclass(frozen=True)
class ExportSpec:
    """One named export target.

    ``sizes``: exact output pixel sizes (one file each); empty means "the largest size the
    crop allows" (at least ``min_side`` on the short side, upscaling only if needed).
    ``aspect``: (w, h) ratio of the crop. ``safe_margin``: extra room around a provided crop box,
    as a fraction of its size per side (``circle_safe`` specs use it so a head-and-shoulders
    box stays inside the inscribed circle of a round avatar mask).
    """
    name: str
    aspect: tuple[int, int]
    sizes: tuple[tuple[int, int], ...] = ()
    format: str = "JPEG"
    quality: int = 92
    min_side: int = 0
    circle_safe: bool = False
    safe_margin: float = 0.0
    description: str = ""

    def __post_init__(self):
        if self.format not in FORMATS:
            raise ValueError(f"format must be one of {sorted(FORMATS)}")
        if not (1 <= self.quality <= 100):
            raise ValueError("quality must be 1..100")
        aw, ah = self.aspect
        for w, h in self.sizes:
            if abs(w / h - aw / ah) > 0.01:
                raise ValueError(f"{self.name}: size {w}x{h} does not match aspect {aw}:{ah}")

    @property
    def ext(self) -> str:
        return FORMATS[self.format]

    def output_sizes(self, crop_w: float, crop_h: float) -> list[tuple[int, int]]:
        if self.sizes:
            return list(self.sizes)
        aw, ah = self.aspect
        # Largest size the crop provides (no upscaling), at least min_side on the short side.
        scale = max(min(crop_w / aw, crop_h / ah), self.min_side / min(aw, ah), 1 / min(aw, ah))
        k = math.floor(scale + 1e-6)
        return [(aw * k, ah * k)]


SPECS_FILE = Path(__file__).resolve().parents[2] / "presets" / "export" / "specs.yaml"
_OVERRIDABLE = {"sizes", "format", "quality", "min_side"}


def _spec_from_data(name: str, data: Mapping) -> ExportSpec:
    if not isinstance(data, Mapping):
        raise ValueError(f"export spec {name!r}: expected a mapping")
    unknown = set(data) - {f for f in ExportSpec.__dataclass_fields__ if f != "name"}
    if unknown:
        raise ValueError(f"export spec {name!r}: unknown key(s) {sorted(unknown)}")
    fields = dict(data)
    fields["aspect"] = tuple(fields.get("aspect") or (1, 1))
    fields["sizes"] = tuple(tuple(int(v) for v in size) for size in fields.get("sizes") or ())
    if len(fields["aspect"]) != 2 or any(len(sz) != 2 or min(sz) < 16 or max(sz) > 8192 for sz in fields["sizes"]):
        raise ValueError(f"export spec {name!r}: aspect and sizes are [w, h] pairs, sizes 16..8192 px")
    return ExportSpec(name=name, **fields)


def load_specs(path: Path = SPECS_FILE) -> Mapping[str, ExportSpec]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return MappingProxyType({name: _spec_from_data(name, d) for name, d in data.items()})


EXPORT_SPECS: Mapping[str, ExportSpec] = load_specs()


def resolve_specs(overrides: Mapping[str, Mapping] | None = None) -> Mapping[str, ExportSpec]:
    """The spec table with a preset's or style guide's overrides (sizes, format, quality,
    min_side) applied; the aspect and circle safety of a named spec stay as declared."""
    if not overrides:
        return EXPORT_SPECS
    table = dict(EXPORT_SPECS)
    for name, changes in overrides.items():
        base = get_spec(name)
        if bad := set(changes) - _OVERRIDABLE:
            raise ValueError(f"export spec {name!r}: cannot override {sorted(bad)}; allowed: {sorted(_OVERRIDABLE)}")
        changes = dict(changes)
        if "sizes" in changes:
            changes["sizes"] = tuple(tuple(int(v) for v in size) for size in changes["sizes"])
        table[name] = replace(base, **changes)
    return MappingProxyType(table)


def get_spec(name: str) -> ExportSpec:
    try:
        return EXPORT_SPECS[name]
    except KeyError:
        raise ValueError(f"unknown export spec {name!r}; known: {sorted(EXPORT_SPECS)}") from None
