"""Entry points: score any torch module on a batch, or an architecture of a space under a protocol."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from archscore.estimators.catalog import COST_MODEL, batch_free
from archscore.estimators.datasets import fixed_batches, load_dataset
from archscore.estimators.protocol import Protocol
from archscore.estimators.spaces import DEFAULT_SPACE
from archscore.estimators.spaces.base import COST, Arch, get_space
from archscore.estimators.spaces.supernet import Supernet
from archscore.estimators.zero_shot.manifest import ZERO_SHOT, resolve_estimators
from archscore.estimators.zero_shot.plugin_loader import load_plugins
from archscore.estimators.zero_shot.proxies import PROXIES, ProxyInput, Undefined
from archscore.estimators.zero_shot.shared_pass import reads_noise, run_shared_pass

# Proxies that do not read the shared pass and depend on the architecture only (not the batch): the
# catalog's estimators that need no data.
BATCH_FREE = frozenset(name for name in ZERO_SHOT if batch_free(name))


@dataclass
class ProxyValue:
    value: float | None
    reason: str | None = None  # why value is None
    transient: bool = False  # the reason is this machine's (not enough memory), not the architecture's

    def to_dict(self) -> dict:
        return {"value": self.value, "reason": self.reason}


def _run_proxy(name: str, inp: ProxyInput) -> ProxyValue:
    try:
        return ProxyValue(PROXIES[name].compute(inp))
    except Undefined as exc:
        return ProxyValue(None, str(exc))


def score_module(
    net: nn.Module,
    x: torch.Tensor | None,
    y: torch.Tensor | None,
    estimators: Sequence[str] | None = None,
    bn_mode: str = "train",
    noise: torch.Tensor | None = None,
    seed: int = 0,
) -> dict[str, ProxyValue]:
    """Score a user's network on one batch with several proxies, sharing one forward pass and
    the fewest backward passes (``noise``: the Gaussian batch of the proxies that read one, vkdnw; None: one
    of the batch's shape, seeded; ``seed``: of their random draws, vkdnw's re-initialisation of a copy of the
    network). The network is left as it was: weights, gradients, BN statistics
    and every module's train/eval mode. A plugin's module is imported when its estimator is first asked for."""
    names = resolve_estimators(estimators)
    load_plugins(names)
    needs = set().union(*(PROXIES[n].needs for n in names))
    if needs and x is None:
        raise ValueError(f"estimators {sorted(n for n in names if PROXIES[n].needs)} need a data batch")
    modes = {m: m.training for m in net.modules()}
    buffers = {name: b.detach().clone() for name, b in net.named_buffers()}  # BN running statistics
    net.train(bn_mode == "train")
    try:
        shared = run_shared_pass(net, x, y, needs, noise, seed) if needs and x is not None else None  # x: checked above
        inp = ProxyInput(net, x, y, shared)
        return {n: _run_proxy(n, inp) for n in names}
    finally:
        for module, training in modes.items():
            module.training = training
        with torch.no_grad():
            for name, b in net.named_buffers():
                b.copy_(buffers[name])


@dataclass
class ArchScores:
    """Per-estimator aggregate (mean over batches) and per-batch values of one architecture."""

    arch: Arch
    scores: dict[str, ProxyValue]
    per_batch: dict[str, list[float | None]] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "scores": {k: v.to_dict() for k, v in self.scores.items()},
            "per_batch": self.per_batch,
        }


@functools.lru_cache(maxsize=8)
def protocol_batches(protocol: Protocol, device: str = "cpu") -> tuple[tuple[torch.Tensor, torch.Tensor], ...]:
    """The fixed batches of a protocol, loaded once per process and device."""
    images = load_dataset(protocol.dataset, "train", protocol.data_root)
    batches = fixed_batches(images, protocol.batch_size, protocol.num_batches, protocol.data_seed)
    batches = altered_inputs(batches, protocol.inputs, protocol.data_seed)
    return tuple((x.to(device), y.to(device)) for x, y in batches)


def altered_inputs(batches, inputs: str, seed: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The batches as the protocol's ``inputs`` asks (RQ4's input-data factor): unchanged; each batch's
    labels permuted; or each batch's images replaced by standard Gaussian noise. Seeded by data_seed."""
    if inputs == "images":
        return list(batches)
    generator = torch.Generator().manual_seed(seed)
    out = []
    for x, y in batches:
        if inputs == "shuffled_labels":
            y = y[torch.randperm(len(y), generator=generator)]
        elif inputs == "noise":
            x = torch.randn(x.shape, generator=generator, dtype=x.dtype)
        else:
            raise ValueError(f"unknown inputs {inputs!r}")
        out.append((x, y))
    return out


def _aggregate(values: list[ProxyValue]) -> ProxyValue:
    missing = [v for v in values if v.value is None]
    if missing:
        return ProxyValue(None, missing[0].reason)
    mean = math.fsum(v.value for v in values if v.value is not None) / len(values)  # none missing here
    return ProxyValue(mean)


def _memory_refusal(
    net: nn.Module, protocol: Protocol, device, memory_limit: int | None, names: list[str]
) -> str | None:
    """Why the network is too large to score with ``names`` here, or None when its estimate fits."""
    from archscore.estimators.zero_shot import memory

    limit = memory.memory_limit(device) if memory_limit is None else memory_limit
    elements = memory.feature_elements(net)
    params = sum(p.numel() for p in net.parameters())
    passes = frozenset().union(*(PROXIES[n].needs for n in names if n in PROXIES))
    rows = memory.gradient_rows(passes, protocol.batch_size)
    needed = memory.scoring_bytes(elements, params, protocol.batch_size, rows)
    if needed <= limit:
        return None
    fits = memory.largest_batch(elements, params, limit, rows)
    advice = f"a batch_size of at most {fits} fits" if fits else "no batch size fits"
    return (
        f"not scored: needs about {needed / 2**30:.1f} GiB at batch_size {protocol.batch_size}, over the "
        f"{limit / 2**30:.1f} GiB a scoring process may use here ({memory.MEMORY_LIMIT_ENV}); {advice}"
    )


SupernetLoader = Callable[[str], tuple[Supernet, dict]]


def _network(sp, arch, protocol: Protocol, supernets: SupernetLoader | None) -> nn.Module:
    """The architecture's standalone network: the space's default network randomly initialised from
    ``protocol.seed``; or, with ``protocol.weights``, the network at the checkpoint's size, taking the
    weights of its path through the supernet (init supernet) or randomly initialised (init random)."""
    if protocol.weights is None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(protocol.seed)
            return sp.build_network(arch, num_classes=protocol.num_classes)
    if supernets is None:
        raise ValueError("protocol.weights names a supernet checkpoint; pass supernets= to load it")
    supernet, manifest = supernets(protocol.weights)
    if manifest["network"].get("num_classes", protocol.num_classes) != protocol.num_classes:
        raise ValueError(
            f"the checkpoint's classifier has {manifest['network']['num_classes']} classes, the "
            f"protocol's dataset {protocol.num_classes}"
        )
    network = supernet.standalone_config()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(protocol.seed)
        net = sp.build_network(arch, num_classes=protocol.num_classes, **network)
    if protocol.init == "supernet":
        net.load_state_dict(supernet.standalone_state_dict(arch))
    return net


def score_architecture(
    arch_encoding,
    space: str = DEFAULT_SPACE,
    estimators: Sequence[str] | None = None,
    protocol: Protocol | None = None,
    batches: Sequence[tuple[torch.Tensor, torch.Tensor]] | None = None,
    device: str | torch.device = "cpu",
    memory_limit: int | None = None,
    supernets: SupernetLoader | None = None,
) -> ArchScores:
    """Score one architecture under a protocol: the network is built and initialised from
    ``protocol.seed`` and scored on each fixed batch; per-batch values are kept and the aggregate is
    their mean. params and flops come from the space's exact cost model (no build needed).

    A network whose estimated scoring memory exceeds ``memory_limit`` bytes (default:
    ``memory.memory_limit()``) is not scored: its network-based estimators get a null with a
    transient reason naming the batch size that would fit.

    With ``protocol.weights`` the network is built with the checkpoint's network settings and takes
    its weights from the supernet (RQ4); ``supernets(sha256)`` returns (supernet, manifest)."""
    protocol = protocol or Protocol()
    sp = get_space(space)
    arch = sp.parse(arch_encoding)
    names = resolve_estimators(estimators)
    scores: dict[str, ProxyValue] = {}
    per_batch: dict[str, list[float | None]] = {}

    cost_names = [n for n in names if n in COST_MODEL and sp.has(COST)]
    if cost_names:
        cost = dict(zip(COST_MODEL, sp.cost(arch, num_classes=protocol.num_classes)))  # (params, FLOPs)
        for n in cost_names:
            scores[n] = ProxyValue(cost[n] / 1e6)
    net_names = [n for n in names if n not in cost_names]
    outside = None
    if net_names and protocol.weights is not None and protocol.init == "supernet":
        supernet, _ = supernets(protocol.weights) if supernets is not None else (None, None)
        if supernet is not None and not supernet.covers(arch):
            outside = f"no supernet weights: {supernet.coverage_error(arch)}"
    if outside:
        scores.update({n: ProxyValue(None, outside) for n in net_names})
        net_names = []
    if net_names:
        net = _network(sp, arch, protocol, supernets).to(device)
        too_large = _memory_refusal(net, protocol, device, memory_limit, net_names)
    if net_names and too_large:
        scores.update({n: ProxyValue(None, too_large, transient=True) for n in net_names})
    elif net_names:
        data_names = [n for n in net_names if n not in BATCH_FREE]
        free_names = [n for n in net_names if n in BATCH_FREE]
        batches = batches if batches is not None else protocol_batches(protocol, str(device))
        if free_names:
            scores.update(score_module(net, batches[0][0], None, free_names, protocol.bn_mode))
        if data_names:
            noise: list[torch.Tensor | None] = [None] * len(batches)
            if any(reads_noise(PROXIES[n].needs) for n in data_names):  # the batches inputs=noise gives
                noise = [x for x, _ in altered_inputs(batches, "noise", protocol.data_seed)]
            runs = [
                score_module(net, x, y, data_names, protocol.bn_mode, noise=z, seed=protocol.seed)
                for (x, y), z in zip(batches, noise)
            ]
            for n in data_names:
                per_batch[n] = [r[n].value for r in runs]
                scores[n] = _aggregate([r[n] for r in runs])
    return ArchScores(arch, {n: scores[n] for n in names}, per_batch)
