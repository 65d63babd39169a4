"""Output file names from a template: slugified fields, safe characters only, never outside the folder."""
from __future__ import annotations

import re
import unicodedata
from pathlib import Path
from typing import Mapping

DEFAULT_NAME_TEMPLATE = "{last}_{first}_{spec}_{w}x{h}.{ext}"
_TEMPLATE_KEYS = {"last", "first", "spec", "w", "h", "ext", "index"}


def slugify(value, fallback: str = "x", max_len: int = 64) -> str:
    """ASCII letters, digits and ``-`` only (no dots, slashes or spaces)."""
    text = unicodedata.normalize("NFKD", str(value)).encode("ascii", "ignore").decode("ascii")
    text = re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-")[:max_len].strip("-")
    return text or fallback


_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*(\.[A-Za-z0-9]+)?$")


def render_name(template: str, *, person: Mapping[str, str] | None, spec: str, w: int, h: int,
                ext: str, index: int = 0) -> str:
    """Fill ``template`` with slugified fields; the result is a single safe file name."""
    person = person or {}
    fields = {"last": slugify(person.get("last", ""), "person"),
              "first": slugify(person.get("first", ""), "x"),
              "spec": slugify(spec), "w": int(w), "h": int(h), "ext": slugify(ext),
              "index": int(index)}
    used = set(re.findall(r"{(\w*)[^}]*}", template))
    if not used <= _TEMPLATE_KEYS:
        raise ValueError(f"unknown name template fields {sorted(used - _TEMPLATE_KEYS)}")
    name = template.format(**fields)
    stem, dot, suffix = name.rpartition(".")
    if not dot:
        stem, suffix = name, ""
    stem = re.sub(r"[^A-Za-z0-9_-]+", "-", stem).strip("-_") or "export"
    name = f"{stem}.{slugify(suffix)}" if suffix else stem
    if not _SAFE_NAME.match(name) or ".." in name:
        raise ValueError(f"unsafe export name {name!r}")
    return name


def _inside(out_dir: Path, name: str) -> Path:
    path = (out_dir / name).resolve()
    if path.parent != out_dir.resolve():
        raise ValueError(f"export name escapes the output folder: {name!r}")
    return path
