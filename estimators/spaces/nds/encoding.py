"""The NDS spaces' vocabulary: block types, the per-stage architecture type and the fixed parts of
every network (torch-free; the bottom of the package: it imports no other module of it)."""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any, NamedTuple

BASIC = "res_basic_block"  # the block types of the NDS records
BOTTLENECK = "res_bottleneck_block"
NUM_STAGES = 3
STRIDES = (1, 2, 2)
STEM_WIDTH = 16
_MAX_TEXT = 2_000  # longest encoding text accepted (a real one is under 300 characters)


class Stages(NamedTuple):
    """Per-stage choices; ``bot_muls`` and ``groups`` are empty in spaces of basic blocks."""

    depths: tuple[int, ...]
    widths: tuple[int, ...]
    bot_muls: tuple[float, ...] = ()
    groups: tuple[int, ...] = ()


Arch = Stages


def _number(value: Any) -> float | None:
    """The value as a number (ints stay ints; 1.0 becomes 1), None when it is not one."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    if isinstance(value, numbers.Integral):
        return int(value)
    value = float(value)
    return int(value) if value.is_integer() else value


def inner_width(width: int, bot_mul: float) -> int:
    """Channels inside a bottleneck block (pycls: round(w * bot_mul))."""
    return round(width * bot_mul)


# The encoding features (SearchSpace.encoding_features): each field's value per stage as a number, in
# Stages order (a space lists its fields: ResNet has no bot_muls or groups), then two totals: the blocks
# of the network, and the blocks weighted by their width (output channels summed over all blocks).
def feature_names_for(fields: Sequence[str]) -> tuple[str, ...]:
    per_stage = tuple(f"{field}[{s}]" for field in fields for s in range(NUM_STAGES))
    return (*per_stage, "sum(depths)", "sum(depths*widths)")


def arch_features(arch: Stages, fields: Sequence[str]) -> tuple[float, ...]:
    per_stage = tuple(float(v) for field in fields for v in getattr(arch, field))
    totals = (float(sum(arch.depths)), float(sum(d * w for d, w in zip(arch.depths, arch.widths))))
    return per_stage + totals
