"""NDS ResNet and NDS ResNeXt-A (Radosavovic et al., "On Network Design Spaces for Visual
Recognition", 2019): macro spaces of whole CIFAR networks described per stage.

A network is a CIFAR stem (conv3x3 3->16, BN, ReLU), three stages of residual blocks with strides
1, 2, 2, and a head (global average pooling, linear). Each stage has a depth (blocks) and a width
(output channels); ResNeXt-A stages also have a bottleneck multiplier and a number of groups.

Accepted encodings (see ``NDSSpace.encodings``):
- mapping: ``{"depths": [d1, d2, d3], "widths": [w1, w2, w3]}`` (+ ``"bot_muls"``, ``"groups"`` for
  ResNeXt-A), as an object or as its JSON text
- net record: the ``net`` object of the published NDS data (``block_type`` and the length-4 lists
  ``ds``, ``ws``, ``ss``, ``bot_muls``, ``num_gs``, entry 0 being the stem), or a whole record that
  holds one under ``"net"``
- compact string: ``d1-2-4_w16-32-64`` (ResNet), ``d1-2-4_w16-32-64_b0.25-0.5-1_g1-2-4``
  (ResNeXt-A): a letter per field, the three stage values joined by ``-``; no commas or spaces, so
  it is safe in CSV cells, URLs and file names. It is also the canonical key.

No two architectures compute the same function, so every architecture is its own class. The cost
model counts like ``archscore.estimators.zero_shot.flops`` (conv and linear multiply-adds, a linear layer's
bias adds, BatchNorm 2 and ReLU 1 per output element, global average pooling 1 per input element;
residual additions are free), so it equals counting the built network.
The vocabulary is ``encoding``, the cost model ``cost``; this module holds the spaces themselves
(registered with the registry). Torch-free; networks are built by
``archscore.estimators.spaces.nds.network``.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from typing import Any

from archscore.estimators.spaces.base import (
    CELLS,
    COST,
    ENUMERATE,
    FEATURES,
    NETWORK,
    SUPERNET,
    EncodingError,
    ForeignEncoding,
    NetworkField,
    SearchSpace,
    decode_json_text,
    register_space,
)
from archscore.estimators.spaces.nds.cost import network_cost
from archscore.estimators.spaces.nds.encoding import (
    _MAX_TEXT,
    BASIC,
    BOTTLENECK,
    NUM_STAGES,
    STEM_WIDTH,
    STRIDES,
    Stages,
    _number,
    arch_features,
    feature_names_for,
)


class NDSSpace(SearchSpace):
    """One NDS macro space: the value sets and the block type are the subclass's."""

    block_type: str  # the NDS record's block_type
    fields: dict[str, tuple[Any, ...]]  # mapping key -> allowed values per stage, in Stages order
    record_fields: dict[str, str]  # mapping key -> net record key
    letters: dict[str, str]  # mapping key -> letter of the compact string
    capabilities = frozenset({ENUMERATE, COST, NETWORK, SUPERNET, CELLS, FEATURES})
    supernet_network = {
        "max_depth": NetworkField(4, 1, 24, "blocks each stage holds; deeper architectures are not covered"),
        "max_width": NetworkField(64, 16, 256, "channels each stage holds; wider architectures are not covered"),
    }
    supernet_rule = (
        "once-for-all style: each stage holds max_depth blocks of width max_width and an architecture "
        "runs the leading blocks and channels; those within the caps are trained and scored"
    )
    supernet_transfers_weights = True
    partition_rule = "the depth of the first stage"
    default_network = {"num_classes": 10, "input_size": 32}

    # --- parsing ---
    def parse(self, encoding: Any) -> Stages:
        if isinstance(encoding, Stages):
            return self._from_mapping({k: getattr(encoding, k) for k in self.fields})
        if isinstance(encoding, str):
            text = encoding.strip()
            if len(text) > _MAX_TEXT:
                raise EncodingError(f"encoding text of {len(text)} characters is too long (at most {_MAX_TEXT})")
            if text.startswith("{"):
                encoding = decode_json_text(text, "an encoding starting with '{'")
            else:
                return self._from_compact(text)
        if isinstance(encoding, dict):
            if "net" in encoding and isinstance(encoding["net"], dict):
                return self.from_record(encoding["net"])
            if "block_type" in encoding or "ds" in encoding:
                return self.from_record(encoding)
            return self._from_mapping(encoding)
        raise EncodingError(
            f"unsupported encoding of type {type(encoding).__name__}; accepted: {', '.join(self.encodings)}"
        )

    def _check_stage_values(self, key: str, values: Any) -> tuple:
        allowed = self.fields[key]
        listed = ", ".join(str(v) for v in allowed)
        if not isinstance(values, (list, tuple)):
            raise EncodingError(
                f"{key}: must be a list of {NUM_STAGES} values (one per stage), got {type(values).__name__}"
            )
        if len(values) != NUM_STAGES:
            raise EncodingError(f"{key}: expected {NUM_STAGES} values (one per stage), got {len(values)}")
        out = []
        for stage, value in enumerate(values, start=1):
            number = _number(value)
            if number is None or number not in allowed:
                raise EncodingError(f"stage {stage} {key[:-1]} {value!r:.40} is not allowed; allowed: {listed}")
            out.append(number)
        return tuple(out)

    def _from_mapping(self, mapping: dict) -> Stages:
        required = list(self.fields)
        missing = [k for k in required if k not in mapping]
        unknown = sorted(str(k) for k in mapping if k not in required)
        if unknown:
            raise EncodingError(f"unknown key(s) {', '.join(unknown)}; {self.name} takes {', '.join(required)}")
        if missing:
            raise EncodingError(f"missing key(s) {', '.join(missing)}; {self.name} takes {', '.join(required)}")
        return Stages(**{k: self._check_stage_values(k, mapping[k]) for k in required})

    def from_record(self, net: dict) -> Stages:
        """An NDS ``net`` record: entry 0 of each list is the stem (width 16, stride 1); the
        strides of the stages must be 1, 2, 2."""
        block = net.get("block_type")
        if block != self.block_type:
            owner = next((s.name for s in _NDS_SPACES if s.block_type == block), None)
            if owner:
                raise ForeignEncoding(
                    f"block_type {block!r} is not {self.name}'s {self.block_type!r} (that is {owner}'s block type)"
                )
            raise EncodingError(f"block_type {block!r} is not {self.name}'s {self.block_type!r}")
        needed = ["ss", *self.record_fields.values()]
        for key in needed:
            values = net.get(key)
            if not isinstance(values, (list, tuple)) or len(values) != NUM_STAGES + 1:
                raise EncodingError(
                    f"net record: {key} must be a list of {NUM_STAGES + 1} values (stem first), got {values!r}"[:200]
                )
        if [_number(s) for s in net["ss"]] != [1, *STRIDES]:
            raise EncodingError(f"net record: ss must be [1, 1, 2, 2] (stem, then the stages), got {net['ss']!r}")
        if _number(net["ws"][0]) != STEM_WIDTH:
            raise EncodingError(f"net record: the stem width ws[0] must be {STEM_WIDTH}, got {net['ws'][0]!r}")
        return self._from_mapping({k: list(net[r][1:]) for k, r in self.record_fields.items()})

    def _from_compact(self, text: str) -> Stages:
        by_letter = {letter: key for key, letter in self.letters.items()}
        example = self.compact_example
        parts = text.split("_")
        if len(parts) != len(self.fields):
            raise EncodingError(
                f"compact string {text[:40]!r}: expected {len(self.fields)} '_'-separated fields like {example}"
            )
        mapping: dict[str, list] = {}
        for part, key in zip(parts, self.fields):
            if part[:1] != self.letters[key]:
                got = by_letter.get(part[:1], part[:1] or "nothing")
                raise EncodingError(
                    f"compact string {text[:40]!r}: field {self.letters[key]!r} ({key}) expected, got {got!r}; "
                    f"e.g. {example}"
                )
            values = []
            for item in part[1:].split("-"):
                try:
                    values.append(float(item) if "." in item else int(item))
                except ValueError:
                    raise EncodingError(f"compact string {text[:40]!r}: {key}: {item!r} is not a number") from None
            mapping[key] = values
        return self._from_mapping(mapping)

    # --- forms ---
    def to_mapping(self, arch: Stages) -> dict[str, list]:
        return {k: list(getattr(arch, k)) for k in self.fields}

    def to_json(self, arch: Stages) -> dict[str, list]:
        return self.to_mapping(arch)

    def to_string(self, arch: Stages) -> str:
        return "_".join(self.letters[k] + "-".join(str(v) for v in getattr(arch, k)) for k in self.fields)

    def to_record(self, arch: Stages) -> dict[str, Any]:
        """The NDS ``net`` record of an architecture."""
        bot_muls = [0.0, *arch.bot_muls] if arch.bot_muls else [0.0] * (NUM_STAGES + 1)
        groups = [1, *arch.groups] if arch.groups else [1] * (NUM_STAGES + 1)
        return {
            "block_type": self.block_type,
            "ds": [1, *arch.depths],
            "ws": [STEM_WIDTH, *arch.widths],
            "ss": [1, *STRIDES],
            "bot_muls": bot_muls,
            "num_gs": groups,
        }

    def canonical_key(self, arch: Stages) -> str:
        """The compact string: every architecture is its own class."""
        return self.to_string(arch)

    def feature_names(self) -> tuple[str, ...]:
        return feature_names_for(tuple(self.fields))

    def encoding_features(self, arch: Stages) -> tuple[float, ...]:
        """Each field's value per stage, then the total depth and the width summed over all blocks."""
        return arch_features(arch, tuple(self.fields))

    @property
    def compact_example(self) -> str:
        return self.to_string(Stages(**{k: (v[0], v[1], v[2]) for k, v in self.fields.items()}))

    # --- enumeration and sampling ---
    def _choices(self) -> list[tuple[Any, ...]]:
        """The value set of each (field, stage) slot, in Stages order."""
        return [values for values in self.fields.values() for _ in range(NUM_STAGES)]

    @property
    def size(self) -> int:
        return math.prod(len(c) for c in self._choices())

    def _from_index(self, index: int) -> Stages:
        values = []
        for choices in reversed(self._choices()):  # the last slot varies fastest
            index, digit = divmod(index, len(choices))
            values.append(choices[digit])
        values.reverse()
        keys = list(self.fields)
        return Stages(**{k: tuple(values[i * NUM_STAGES : (i + 1) * NUM_STAGES]) for i, k in enumerate(keys)})

    def enumerate(self) -> Iterator[Stages]:
        return (self._from_index(i) for i in range(self.size))

    def sample(self, n: int, seed: int, deisomorphic: bool = False) -> list[Stages]:
        """n distinct architectures drawn uniformly, reproducible for a seed."""
        if deisomorphic:
            raise ValueError(f"{self.name} has no isomorphism classes; de-isomorphic sampling does not apply")
        if not 0 <= n <= self.size:
            raise ValueError(f"n={n} must be between 0 and the space size {self.size}")
        return [self._from_index(i) for i in random.Random(seed).sample(range(self.size), n)]

    # --- cost ---
    def cost(self, arch: Stages, **config: Any) -> tuple[int, int]:
        return network_cost(self.block_type, arch, **{**self.default_network, **config})

    # --- supernet ---
    def build_supernet(self, **config: Any):
        from archscore.estimators.spaces.nds.supernet import NDSSupernet

        return NDSSupernet(self.name, self.block_type, **config)

    def trainable(self, arch: Stages) -> bool:
        return True  # every parsed architecture is valid; the supernet's caps are its sampling_space's

    def random_arch(self, rng: random.Random) -> Stages:
        return self.from_choices([rng.choice(values) for values in self.choice_slots()])

    def partition_values(self) -> tuple[int, ...]:
        return self.fields["depths"]

    def partition_value(self, arch: Stages) -> int:
        return arch.depths[0]

    def choice_slots(self) -> tuple[tuple[Any, ...], ...]:
        """Each field's value of each stage: depths of stages 1-3, then widths, ..."""
        return tuple(values for values in self.fields.values() for _ in range(NUM_STAGES))

    def from_choices(self, values) -> Stages:
        values = list(values)
        return self._from_mapping({f: values[i * NUM_STAGES : (i + 1) * NUM_STAGES] for i, f in enumerate(self.fields)})

    def build_network(self, arch: Stages, **config: Any):
        from archscore.estimators.spaces.nds.network import NDSNetwork

        return self.tag_cell_outputs(NDSNetwork(self.block_type, arch, **{**self.default_network, **config}))

    def cell_outputs(self, net: Any) -> list[Any]:
        """The stem (conv3x3-BN-ReLU), then every residual block of every stage."""
        return [net.stem, *(block for stage in net.stages for block in stage)]

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "value_sets": {k: list(v) for k, v in self.fields.items()}}


_NDS_SPACES: list[NDSSpace] = []


def _registered(cls: type[SearchSpace]) -> type[SearchSpace]:
    from archscore.estimators.spaces.base import get_space

    space = get_space(cls.name)
    assert isinstance(space, NDSSpace)
    _NDS_SPACES.append(space)
    return cls


@_registered
@register_space("nds-resnet", "resnet")
class NDSResNetSpace(NDSSpace):
    name = "nds_resnet"
    description = (
        "NDS ResNet (Radosavovic et al. 2019): CIFAR stem of width 16, three stages (strides 1, 2, 2) of basic "
        "residual blocks, each stage with its own depth and width"
    )
    block_type = BASIC
    fields = {"depths": (1, 2, 3, 4, 6, 8, 12, 16, 24), "widths": (16, 24, 32, 40, 48, 64, 80, 96, 128, 160, 192, 256)}
    record_fields = {"depths": "ds", "widths": "ws"}
    letters = {"depths": "d", "widths": "w"}
    encodings = {
        "mapping": '{"depths": [d1, d2, d3], "widths": [w1, w2, w3]} (object or JSON text), depths in '
        "1, 2, 3, 4, 6, 8, 12, 16, 24 and widths in 16, 24, 32, 40, 48, 64, 80, 96, 128, 160, 192, 256",
        "record": 'the NDS net record {"block_type": "res_basic_block", "ds": [1, d1, d2, d3], "ws": [16, w1, w2, '
        'w3], "ss": [1, 1, 2, 2], ...} (stem first), or a whole NDS record holding it under "net"',
        "compact": "d1-2-4_w16-32-64 (also the canonical key)",
    }


@_registered
@register_space("nds-resnexta", "resnext-a", "resnexta")
class NDSResNeXtASpace(NDSSpace):
    name = "nds_resnexta"
    description = (
        "NDS ResNeXt-A (Radosavovic et al. 2019): CIFAR stem of width 16, three stages (strides 1, 2, 2) of "
        "bottleneck residual blocks (1x1, grouped 3x3 of inner width round(w * bot_mul), 1x1), each stage with "
        "its own depth, width, bottleneck multiplier and groups"
    )
    block_type = BOTTLENECK
    fields = {
        "depths": (1, 2, 4, 8, 16),
        "widths": (16, 32, 64, 128, 256),
        "bot_muls": (0.25, 0.5, 1),
        "groups": (1, 2, 4),
    }
    record_fields = {"depths": "ds", "widths": "ws", "bot_muls": "bot_muls", "groups": "num_gs"}
    letters = {"depths": "d", "widths": "w", "bot_muls": "b", "groups": "g"}
    encodings = {
        "mapping": '{"depths": [d1, d2, d3], "widths": [...], "bot_muls": [...], "groups": [...]} (object or JSON '
        "text), depths in 1, 2, 4, 8, 16, widths in 16, 32, 64, 128, 256, bot_muls in 0.25, 0.5, 1, groups in 1, 2, 4",
        "record": 'the NDS net record {"block_type": "res_bottleneck_block", "ds": [1, d1, d2, d3], "ws": [16, ...], '
        '"ss": [1, 1, 2, 2], "bot_muls": [0, b1, b2, b3], "num_gs": [1, g1, g2, g3]} (stem first), or a whole NDS '
        'record holding it under "net"',
        "compact": "d1-2-4_w16-32-64_b0.25-0.5-1_g1-2-4 (also the canonical key)",
    }
