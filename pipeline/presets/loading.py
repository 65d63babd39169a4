"""Loading ``presets/*.yaml``: strict YAML, validation errors as :class:`Problem` lines, a cache by file."""
from __future__ import annotations

import functools
from pathlib import Path

import yaml
from pydantic import BaseModel, ValidationError

from .errors import PresetError, Problem, _fail
from .schema import FieldSpec, FieldValue, OutputFraming, Preset, SamplerDefaults

PRESETS_DIR = Path(__file__).resolve().parents[2] / "presets"


MAX_FILE_BYTES = 64 * 1024  # a preset is a page of YAML; anything bigger is a mistake or an attack
MAX_ALIASES = 64  # anchors are handy; thousands of aliases are a "billion laughs" expansion


class _UniqueKeyLoader(yaml.SafeLoader):
    """safe_load, except that a repeated key is an error instead of silently keeping the last one,
    and that alias expansion is bounded."""

    def compose_node(self, parent, index):  # type: ignore[override]
        if self.check_event(yaml.AliasEvent):
            self._aliases = getattr(self, "_aliases", 0) + 1
            if self._aliases > MAX_ALIASES:
                raise yaml.composer.ComposerError(None, None, f"more than {MAX_ALIASES} aliases",
                                                  self.peek_event().start_mark)
        return super().compose_node(parent, index)

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


def safe_yaml(text: str, source: str):
    """``yaml.safe_load`` with unique keys and bounded aliases; errors become a PresetError."""
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(yaml)"
        raise _fail(source, where, f"invalid YAML: {getattr(e, 'problem', None) or e}") from None
    except RecursionError:
        raise _fail(source, "(yaml)", "nested too deeply") from None


def load_preset(path: str | Path) -> Preset:
    """Load and validate one preset file; PresetError names the file, key path and problem."""
    path = Path(path)
    source = str(path)
    try:
        if (size := path.stat().st_size) > MAX_FILE_BYTES:
            raise _fail(source, "(file)", f"{size} bytes; a preset is at most {MAX_FILE_BYTES}")
        data = safe_yaml(path.read_bytes().decode("utf-8"), source)
    except OSError as e:
        raise _fail(source, "(file)", f"cannot read: {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise _fail(source, "(file)", "not UTF-8 text") from None
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
