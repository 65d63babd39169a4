"""Member names from file names (and CSV cells): ``first_last.jpg``, ``First Last.jpg``, ``last,first``."""
from __future__ import annotations

import re
from pathlib import Path

# Copy markers that phones, browsers and file managers append: "name (1)", "name-2", "name_copy".
_COPY_MARK = re.compile(r"(?:[\s_-]*\(\d+\)|[\s_-]+(?:copy|kopie|\d{1,3}))+$", re.IGNORECASE)
_IMAGE_EXT = {".jpg", ".jpeg", ".png", ".webp", ".heic", ".heif"}


def _case(token: str) -> str:
    """Title-case a token written all lower or all upper; keep deliberate casing (McDonald, van)."""
    if token.islower() or token.isupper():
        # str.title would also capitalise after apostrophes and hyphens, which is what names want.
        return token.title()
    return token


def member_name(name: str | Path) -> dict[str, str]:
    """``{"first": ..., "last": ...}`` from a file name or a free-text name.

    ``jane_doe.jpg`` / ``Jane Doe.jpg`` -> first Jane, last Doe (several first names stay together:
    ``mary_ann_smith`` -> Mary Ann / Smith); ``Doe, Jane`` or ``doe,jane.jpg`` -> first Jane, last Doe.
    A single word is a first name with an empty last name.
    """
    text = Path(str(name)).name
    stem, ext = text.rsplit(".", 1) if "." in text else (text, "")
    if ext and f".{ext.lower()}" not in _IMAGE_EXT and not ext.isalpha():
        stem = text  # "J. Doe" is a name, not a file with extension " Doe"
    text = _COPY_MARK.sub("", stem.strip()) or stem.strip()
    if "," in text:
        last, _, first = text.partition(",")
        first_tokens, last_tokens = _tokens(first), _tokens(last)
    else:
        tokens = _tokens(text)
        first_tokens, last_tokens = (tokens[:-1], tokens[-1:]) if len(tokens) > 1 else (tokens, [])
    return {"first": " ".join(map(_case, first_tokens)), "last": " ".join(map(_case, last_tokens))}


def _tokens(text: str) -> list[str]:
    # Underscores, dots and runs of spaces separate words; hyphens and apostrophes belong to them.
    return [t for t in re.split(r"[\s_.]+", text.strip()) if t]


def display_name(person: dict[str, str]) -> str:
    return " ".join(p for p in (person.get("first", ""), person.get("last", "")) if p) or "?"
