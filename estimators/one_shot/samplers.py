"""Architecture samplers for supernet training (docs/concepts/estimators.md). Each returns the architectures of
one step;
architectures the space does not train (NB201: no conv on an input-to-output path) are resampled."""

from __future__ import annotations

import random
from collections.abc import Callable

from archscore.estimators.spaces.base import Arch, EncodingError, SearchSpace

Sampler = Callable[[SearchSpace, random.Random, int], list[Arch]]
SAMPLERS: dict[str, Sampler] = {}


def register_sampler(name: str):
    def decorate(fn: Sampler) -> Sampler:
        if name in SAMPLERS:
            raise ValueError(f"sampler {name!r} is already registered")
        SAMPLERS[name] = fn
        return fn

    return decorate


def _draw(space: SearchSpace, rng: random.Random, draw_one: Callable[[random.Random], Arch]) -> Arch:
    while True:
        arch = draw_one(rng)
        if space.trainable(arch):
            return arch


@register_sampler("uniform")
def uniform(space: SearchSpace, rng: random.Random, n: int) -> list[Arch]:
    """Every choice drawn i.i.d."""
    return [_draw(space, rng, space.random_arch) for _ in range(n)]


@register_sampler("deiso")
def deisomorphic(space: SearchSpace, rng: random.Random, n: int) -> list[Arch]:
    """Uniform over isomorphism classes (6,466 for NB201), then a member of the class."""
    classes = list(space.isomorphism_classes().values())
    return [_draw(space, rng, lambda r: r.choice(r.choice(classes))) for _ in range(n)]


@register_sampler("fair")
def fair(space: SearchSpace, rng: random.Random, n: int | None = None) -> list[Arch]:
    """FairNAS: as many architectures per step as the first slot (an op choice) has options, every
    option used exactly once in every slot of that size; a slot of another size (NB301's input
    pairs) spreads its options as evenly as it can. The whole set is redrawn until each
    architecture is trainable, which keeps the fairness."""
    slots = space.choice_slots()
    k = len(slots[0])
    while True:
        columns = [rng.sample(list(options) * -(-k // len(options)), k) for options in slots]
        try:
            archs = [space.from_choices([column[i] for column in columns]) for i in range(k)]
        except EncodingError:  # choices that make no valid architecture (an NB101 matrix without a path)
            continue
        if all(space.trainable(a) for a in archs):
            return archs
