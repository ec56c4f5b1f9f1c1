"""Architecture samplers for supernet training (SPEC §4). Each returns the architectures of one step;
architectures without a conv on an input-to-output path are resampled."""

from __future__ import annotations

import random
from collections.abc import Callable

from estimators.spaces.nb201 import NUM_EDGES, OPS, Arch, has_conv_path, isomorphism_classes

Sampler = Callable[[random.Random, int], list[Arch]]
SAMPLERS: dict[str, Sampler] = {}


def register_sampler(name: str):
    def decorate(fn: Sampler) -> Sampler:
        if name in SAMPLERS:
            raise ValueError(f"sampler {name!r} is already registered")
        SAMPLERS[name] = fn
        return fn

    return decorate


def _draw(rng: random.Random, draw_one: Callable[[random.Random], Arch]) -> Arch:
    while True:
        arch = draw_one(rng)
        if has_conv_path(arch):
            return arch


@register_sampler("uniform")
def uniform(rng: random.Random, n: int) -> list[Arch]:
    """Ops drawn i.i.d. per edge."""
    return [_draw(rng, lambda r: tuple(r.choice(OPS) for _ in range(NUM_EDGES))) for _ in range(n)]


@register_sampler("deiso")
def deisomorphic(rng: random.Random, n: int) -> list[Arch]:
    """Uniform over isomorphism classes (6,466 for NB201), then a member of the class."""
    classes = list(isomorphism_classes().values())
    return [_draw(rng, lambda r: r.choice(r.choice(classes))) for _ in range(n)]


@register_sampler("fair")
def fair(rng: random.Random, n: int = len(OPS)) -> list[Arch]:
    """FairNAS: len(OPS) architectures per step, every op used exactly once on every edge. The
    whole set is redrawn until each architecture has a conv path, which keeps the fairness."""
    while True:
        columns = [rng.sample(OPS, len(OPS)) for _ in range(NUM_EDGES)]
        archs = [tuple(columns[e][k] for e in range(NUM_EDGES)) for k in range(len(OPS))]
        if all(has_conv_path(a) for a in archs):
            return archs
