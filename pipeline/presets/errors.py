"""Preset errors: a :class:`Problem` names the source, key path and message; :class:`PresetError` carries them."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence


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
