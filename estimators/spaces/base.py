"""The small interface every search space implements, and the space registry.

Everything here is torch-free: the API process validates and canonicalises encodings with it.
Building networks (torch) is delegated to a per-space module imported lazily.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from typing import Any

Arch = tuple[str, ...]


class EncodingError(ValueError):
    """An architecture encoding that the space does not accept; the message says what and why."""


class SearchSpace(ABC):
    name: str
    description: str
    encodings: dict[str, str]  # encoding name -> how it looks
    ground_truth_columns: tuple[str, ...] = ()

    @abstractmethod
    def parse(self, encoding: Any) -> Arch:
        """Validate any accepted encoding and return the architecture (raises EncodingError)."""

    @abstractmethod
    def to_string(self, arch: Arch) -> str:
        """The space's canonical string form of an architecture (not isomorphism-reduced)."""

    @abstractmethod
    def canonical_key(self, arch: Arch) -> str:
        """A key shared by architectures that compute the same function (isomorphic cells). Members can
        still differ in ops on edges that do not reach the output, and so in op-counting estimators."""

    @abstractmethod
    def enumerate(self) -> Iterator[Arch]:
        """Every architecture of the space, in a fixed order."""

    @abstractmethod
    def sample(self, n: int, seed: int, deisomorphic: bool = False) -> list[Arch]:
        """n architectures drawn reproducibly: i.i.d. uniform, or uniform over isomorphism classes."""

    def representative(self, arch: Arch) -> Arch:
        """The member of the architecture's isomorphism class that is scored on its behalf."""
        return arch

    @property
    @abstractmethod
    def size(self) -> int:
        """Number of architectures in the space."""

    @abstractmethod
    def build_network(self, arch: Arch, **config: Any):
        """The standalone torch network of an architecture."""

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "size": self.size,
            "encodings": dict(self.encodings),
            "ground_truth_columns": list(self.ground_truth_columns),
        }


_SPACES: dict[str, SearchSpace] = {}
_ALIASES: dict[str, str] = {}


def register_space(*aliases: str) -> Callable[[type[SearchSpace]], type[SearchSpace]]:
    """Class decorator: instantiate the space and register it under its name and aliases."""

    def decorate(cls: type[SearchSpace]) -> type[SearchSpace]:
        space = cls()
        for key in (space.name, *aliases):
            if key in _SPACES or key in _ALIASES:
                raise ValueError(f"search space name {key!r} is already registered")
        _SPACES[space.name] = space
        for alias in aliases:
            _ALIASES[alias] = space.name
        return cls

    return decorate


def get_space(name: str) -> SearchSpace:
    key = _ALIASES.get(name.lower(), name.lower())
    if key not in _SPACES:
        raise KeyError(f"unknown search space {name!r}; available: {', '.join(sorted(_SPACES))}")
    return _SPACES[key]


def list_spaces() -> list[str]:
    return sorted(_SPACES)


def decode_text_encoding(text: str) -> Any:
    """An encoding read from text (a CSV cell, a line of a file): JSON lists and integers are
    decoded ("[0, 1, 2, 3, 4, 0]", "17"), anything else is kept as a string."""
    stripped = text.strip()
    if stripped[:1] == "[" or stripped.lstrip("-").isdigit():
        try:
            return json.loads(stripped)
        except json.JSONDecodeError:
            return stripped
    return stripped


def parse_many(space: SearchSpace, encodings: Sequence[Any]) -> tuple[list[Arch | None], dict[int, str]]:
    """Parse every encoding; return the architectures (None where invalid) and errors by index."""
    archs: list[Arch | None] = []
    errors: dict[int, str] = {}
    for i, enc in enumerate(encodings):
        try:
            archs.append(space.parse(enc))
        except EncodingError as exc:
            archs.append(None)
            errors[i] = str(exc)
    return archs, errors
