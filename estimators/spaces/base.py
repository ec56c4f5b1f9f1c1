"""The contract every search space implements, and the space registry.

Everything here is torch-free: the API process validates and canonicalises encodings with it.
Networks (torch) are built by per-space modules imported lazily.

Required of every space: ``parse`` (every accepted encoding -> the space's own hashable ``Arch``),
``to_string`` / ``to_json`` (round trips through ``parse``), ``canonical_key`` and ``sample``.
Everything else is an optional capability, declared in ``capabilities`` and asked with ``has``;
a space that does not declare one raises ``NotImplementedError`` naming it.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable, Iterator, Sequence
from typing import Any, NamedTuple

# Each space owns its architecture type (a tuple, a frozen dataclass, ...), immutable and hashable; the
# contract cannot name it, so it is Any here and each space's methods declare their own.
Arch = Any

# Optional capabilities a space may declare.
ENUMERATE = "enumerate"  # enumerate() and size: every architecture, in a fixed order
ISOMORPHISM = "isomorphism"  # isomorphism_classes(), representative(), de-isomorphic sampling
COST = "cost"  # cost(): exact params and FLOPs of the standalone network, torch-free
GROUND_TRUTH = "ground_truth"  # ground_truth(column) for the built-in ground_truth_columns
PUBLISHED = "published_proxies"  # published_proxies(): published scores of the zero-shot estimators
NETWORK = "network"  # build_network(): the standalone torch network
SUPERNET = "supernet"  # build_supernet(), trainable(): one-shot estimators
OPERATIONS = "operations"  # operation_counts() and op_slots(): the ops an architecture holds (op-level bias)
CELLS = "cell_outputs"  # cell_outputs(): the modules whose outputs are a built network's per-cell features
UPLOADED = "uploaded"  # its architectures are models uploaded to the service (POST /v1/models), named by sha256
FEATURES = "encoding_features"  # feature_names() and encoding_features(): numbers of the encoding (predictors)
CAPABILITIES = (
    ENUMERATE,
    ISOMORPHISM,
    COST,
    GROUND_TRUTH,
    PUBLISHED,
    NETWORK,
    SUPERNET,
    OPERATIONS,
    CELLS,
    UPLOADED,
    FEATURES,
)

# The attribute ``tag_cell_outputs`` sets on each cell-output module of a built network: its position in
# execution order. Passes that receive only the network (AZ-NAS's ``cell_features``) find the cells by it.
CELL_OUTPUT_TAG = "archscore_cell_output"


class EncodingError(ValueError):
    """An architecture encoding that the space does not accept; the message says what and why."""


class ForeignEncoding(EncodingError):
    """A well-formed encoding of another space (e.g. an NDS record of the other block type): tables
    that mix spaces skip these, with a count, instead of refusing the whole table."""


class NetworkField(NamedTuple):
    """One integer setting of a space's supernet network (``SearchSpace.supernet_network``)."""

    default: int
    low: int
    high: int
    help: str


class NetworkConfigError(ValueError):
    """A supernet network setting the space does not accept; ``field`` names it."""

    def __init__(self, field: str, reason: str):
        super().__init__(f"{field}: {reason}")
        self.field, self.reason = field, reason


PARTITIONS = NetworkField(
    1,
    1,
    16,
    "reduced sharing: K supernets, each owning the architectures whose "
    "partition value (the space's partition_rule) falls to it",
)


class SearchSpace(ABC):
    name: str
    description: str
    encodings: dict[str, str]  # encoding name -> how it looks
    capabilities: frozenset[str] = frozenset()
    ground_truth_columns: tuple[str, ...] = ()
    default_network: dict[str, Any] = {}
    supernet_network: dict[str, NetworkField] = {}  # the supernet's size settings (SUPERNET spaces)
    supernet_rule: str = ""  # which architectures the supernet trains and scores, in words
    supernet_transfers_weights = False  # the standalone network can take an architecture's supernet weights (RQ4)
    partition_rule: str = ""  # reduced sharing: what partition_value reads, in words
    samples = True  # False: the space holds only the architectures given to it (onnx); sample() raises ValueError

    # --- required ---
    @abstractmethod
    def parse(self, encoding: Any) -> Arch:
        """Validate any accepted encoding and return the architecture (raises EncodingError)."""

    def parse_local(self, encoding: Any) -> Arch:
        """``parse`` of an encoding given on this machine (the library, the command line), which may also
        name a local file (the onnx space: a model's path). The service never calls it. Default: ``parse``."""
        return self.parse(encoding)

    @abstractmethod
    def to_string(self, arch: Arch) -> str:
        """The space's string form of an architecture; ``parse`` of it gives ``arch`` back."""

    @abstractmethod
    def to_json(self, arch: Arch) -> Any:
        """A JSON-ready form of an architecture; ``parse`` of it gives ``arch`` back."""

    @abstractmethod
    def canonical_key(self, arch: Arch) -> str:
        """A key shared by architectures that compute the same function (isomorphic cells); scores
        other than params and flops are computed once per key."""

    @abstractmethod
    def sample(self, n: int, seed: int, deisomorphic: bool = False) -> list[Arch]:
        """n distinct architectures drawn reproducibly: uniformly, or (spaces with isomorphism
        classes) uniformly over classes. Raises ValueError when n is more than the space holds."""

    # --- capabilities ---
    def has(self, capability: str) -> bool:
        if capability not in CAPABILITIES:
            raise ValueError(f"unknown capability {capability!r}; known: {', '.join(CAPABILITIES)}")
        return capability in self.capabilities

    def _missing(self, capability: str):
        return NotImplementedError(f"search space {self.name} does not provide {capability!r}")

    def enumerate(self) -> Iterator[Arch]:
        """Every architecture of the space, in a fixed order."""
        raise self._missing(ENUMERATE)

    @property
    def size(self) -> int | None:
        """Number of architectures (None where the space does not enumerate)."""
        return None

    def isomorphism_classes(self) -> dict[str, tuple[Arch, ...]]:
        """Canonical key -> members in enumeration order."""
        raise self._missing(ISOMORPHISM)

    def representative(self, arch: Arch) -> Arch:
        """The member of the architecture's class that is scored on its behalf."""
        return arch

    def truth_key(self, arch: Arch) -> str:
        """The key ground-truth tables are looked up by. Default: the canonical key (benchmarks that
        hold one entry per class); NB201 trained isomorphic cells separately and keys by the string."""
        return self.canonical_key(arch)

    def cost(self, arch: Arch, **config: Any) -> tuple[int, int]:
        """(trainable parameters, FLOPs of one sample) of the standalone network."""
        raise self._missing(COST)

    def ground_truth(self, column: str) -> dict[str, float]:
        """Built-in ground truth: truth_key -> value (higher is better)."""
        raise self._missing(GROUND_TRUTH)

    def published_proxies(self) -> dict[str, dict[str, float]]:
        """Published scores: estimator name -> {truth_key: value}."""
        raise self._missing(PUBLISHED)

    def published_archs(self) -> list[Arch]:
        """The architectures that have published scores, in a fixed order."""
        raise self._missing(PUBLISHED)

    def operation_counts(self, arch: Arch) -> dict[str, int]:
        """How many times each candidate operation appears in the architecture (operations that run)."""
        raise self._missing(OPERATIONS)

    def op_slots(self, arch: Arch) -> tuple[Hashable, tuple[str, ...]]:
        """(frame, ops): the architecture as a frame (its wiring) and the op in each position of it. Two
        architectures with the same frame whose ops differ in one position are one single-op swap apart."""
        raise self._missing(OPERATIONS)

    def feature_names(self) -> tuple[str, ...]:
        """The names of ``encoding_features``' numbers, in order."""
        raise self._missing(FEATURES)

    def encoding_features(self, arch: Arch) -> tuple[float, ...]:
        """Fixed-length numbers read off the architecture as written (one-hot ops, adjacency, op counts),
        torch-free: the encoding part of a few-shot predictor's features."""
        raise self._missing(FEATURES)

    def build_network(self, arch: Arch, **config: Any):
        """The standalone torch network of an architecture."""
        raise self._missing(NETWORK)

    def cell_outputs(self, net: Any) -> list[Any]:
        """The modules of a network built by ``build_network`` whose outputs are its per-cell features, in
        execution order: the stem, then each cell (block); each runs once per forward and outputs an
        (N, C, H, W) tensor. AZ-NAS reads these features."""
        raise self._missing(CELLS)

    def tag_cell_outputs(self, net: Any) -> Any:
        """``net`` with each module of ``cell_outputs(net)`` marked with its position (attribute
        CELL_OUTPUT_TAG; copies of the network keep it). ``build_network`` of a CELLS space calls it."""
        for position, module in enumerate(self.cell_outputs(net)):
            setattr(module, CELL_OUTPUT_TAG, position)
        return net

    def build_supernet(self, **config: Any):
        """A weight-sharing supernet whose forward takes (x, arch)."""
        raise self._missing(SUPERNET)

    def supernet_config(self, values: dict[str, Any] | None = None) -> dict[str, int]:
        """The supernet's network settings: ``values`` checked field by field over the defaults
        (raises NetworkConfigError naming the field). ``num_classes`` comes from the dataset, not here."""
        if not self.has(SUPERNET):
            raise self._missing(SUPERNET)
        values = dict(values or {})
        config = {}
        for name, field in {**self.supernet_network, "partitions": PARTITIONS}.items():
            value = values.pop(name, field.default)
            if isinstance(value, bool) or not isinstance(value, int):
                raise NetworkConfigError(name, f"must be an integer, got {value!r}")
            if not field.low <= value <= field.high:
                raise NetworkConfigError(name, f"must be in {field.low}..{field.high} ({field.help}), got {value}")
            config[name] = value
        if config["partitions"] > len(self.partition_values()):
            raise NetworkConfigError(
                "partitions", f"at most {len(self.partition_values())} for {self.name} ({self.partition_rule})"
            )
        if config["partitions"] == 1:  # one shared supernet: manifests stay as they were before partitions
            del config["partitions"]
        for name in values:
            known = ", ".join(self.supernet_network) or "none"
            raise NetworkConfigError(name, f"not a network setting of the {self.name} supernet (settings: {known})")
        return config

    def make_supernet(self, partitions: int = 1, **config: Any):
        """The supernet of ``supernet_config()`` (plus num_classes): the space's own, or with
        ``partitions`` K > 1 a group of K of them, each owning one share of the partition values."""
        if partitions == 1:
            return self.build_supernet(**config)
        from archscore.estimators.spaces.supernet import PartitionedSupernet

        return PartitionedSupernet(self, partitions, config)

    def partition_values(self) -> tuple[Hashable, ...]:
        """The values ``partition_value`` can take, in a fixed order: value i belongs to part i mod K."""
        raise self._missing(SUPERNET)

    def partition_value(self, arch: Arch) -> Hashable:
        """The value that decides which of K reduced-sharing supernets owns ``arch`` (asked of the
        form the supernet runs, ``supernet_path(arch)``)."""
        raise self._missing(SUPERNET)

    def trainable(self, arch: Arch) -> bool:
        """Whether the supernet trains this architecture (samplers resample the others)."""
        raise self._missing(SUPERNET)

    def random_arch(self, rng) -> Arch:
        """One architecture with every choice drawn i.i.d. from ``rng`` (a random.Random): the
        uniform supernet sampler."""
        raise self._missing(SUPERNET)

    def choice_slots(self) -> tuple[tuple[Any, ...], ...]:
        """The independent choices an architecture is made of (NB201: the op of each edge), for the
        fair sampler; ``from_choices`` builds the architecture of one value per slot."""
        raise self._missing(SUPERNET)

    def from_choices(self, values: Sequence[Any]) -> Arch:
        raise self._missing(SUPERNET)

    def supernet_path(self, arch: Arch) -> Arch:
        """The form of ``arch`` the supernet actually runs (architectures with equal paths get
        equal one-shot scores). Default: the architecture itself."""
        return arch

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "size": self.size,
            "encodings": dict(self.encodings),
            "capabilities": sorted(self.capabilities),
            "ground_truth_columns": list(self.ground_truth_columns),
            "supernet_network": {name: f._asdict() for name, f in self.supernet_network.items()} or None,
            "supernet_rule": self.supernet_rule or None,
            "partition_rule": self.partition_rule or None,
        }


_SPACES: dict[str, SearchSpace] = {}
_ALIASES: dict[str, str] = {}


def register_space(*aliases: str) -> Callable[[type[SearchSpace]], type[SearchSpace]]:
    """Class decorator: instantiate the space and register it under its name and aliases."""

    def decorate(cls: type[SearchSpace]) -> type[SearchSpace]:
        space = cls()
        unknown = set(space.capabilities) - set(CAPABILITIES)
        if unknown:
            raise ValueError(f"search space {space.name!r} declares unknown capabilities {sorted(unknown)}")
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
    """An encoding read from text (a CSV cell, a line of a file): JSON lists, objects and integers
    are decoded ("[0, 1, 2, 3, 4, 0]", "{\\"matrix\\": ...}", "17"), anything else is kept as a string."""
    stripped = text.strip()
    if stripped[:1] in ("[", "{") or stripped.lstrip("-").isdigit():
        try:
            return json.loads(stripped)
        except (ValueError, RecursionError):  # not JSON, too deep, an integer of too many digits
            return stripped
    return stripped


def decode_json_text(text: str, what: str) -> Any:
    """The value of an encoding given as JSON text (a CLI line, a CSV cell, a string in a request)."""
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        raise EncodingError(f"{what} given as text must be valid JSON, at most 1000 levels deep") from None


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
