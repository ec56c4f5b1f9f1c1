"""Tests for archscore.estimators.zero_shot: the shared-pass proxies against independent references.

The library computes the ten proxies from one forward pass and the fewest backward passes
(``run_shared_pass``); ``tests/helpers/reference_proxies.py`` recomputes each proxy separately, on its own
deepcopy of the network, exactly as the definitions (docs/concepts/estimators.md) and foresight describe. Equality of the two on several
networks (NB201 cells and user-defined modules), and equality of every subset of estimators with
all ten together, is what proves the sharing changes nothing.
"""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pydantic
import pytest
import torch
from helpers.data import published_by_arch
from helpers.proxies import small_net
from helpers.reference_proxies import ref_grad_norm, ref_params, reference_scores
from torch import nn

from archscore.estimators.catalog import BUILT_IN
from archscore.estimators.datasets import fixed_batches, load_embedded_cifar10
from archscore.estimators.protocol import Protocol
from archscore.estimators.spaces import get_space
from archscore.estimators.spaces.nb201 import network_cost
from archscore.estimators.zero_shot.engine import (
    BATCH_FREE,
    protocol_batches,
    resolve_estimators,
    score_architecture,
    score_module,
)
from archscore.estimators.zero_shot.manifest import ZERO_SHOT
from archscore.estimators.zero_shot.proxies import PROXIES, register_proxy
from archscore.estimators.zero_shot.shared_pass import MAIN_NEEDS, known_needs, run_shared_pass

REPO_ROOT = Path(__file__).resolve().parents[1]
SPACE = get_space("nb201")
ALL = list(ZERO_SHOT)  # the installed plugins' too (examples/my_estimator)
DATA_PROXIES = [n for n in ALL if n not in BATCH_FREE]
BUILT_IN_ZERO_SHOT = [n for n in ALL if n in BUILT_IN]

# Three small cells that together use every NB201 op (and a dead edge: node 2 -> 3 is 'none').
ARCHS = [
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",
    "|nor_conv_1x1~0|+|skip_connect~0|none~1|+|avg_pool_3x3~0|nor_conv_3x3~1|nor_conv_1x1~2|",
    "|avg_pool_3x3~0|+|none~0|nor_conv_1x1~1|+|nor_conv_3x3~0|skip_connect~1|none~2|",
]
ALL_NONE = ("none",) * 6


# --------------------------------------------------------------------------- helpers


class SmallCNN(nn.Module):
    """A user network outside any space: conv with bias, BN, in-place ReLU, max pool, linear."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1),
            nn.BatchNorm2d(8),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, stride=2, padding=1, bias=False),
            nn.ReLU(),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.pool(self.features(x)).flatten(1))


# FLOPs per sample of SmallCNN on 32x32, counted by hand in the NB201 convention
# (MACs + bias adds, BN 2/element, ReLU 1/element, pool k*k per output, global pool 1 per input).
SMALL_CNN_FLOPS = (
    27 * 8 * 32 * 32
    + 8 * 32 * 32  # conv1 MACs + bias
    + 2 * 8 * 32 * 32  # BN
    + 8 * 32 * 32  # ReLU
    + 4 * 8 * 16 * 16  # max pool 2x2
    + 72 * 16 * 8 * 8  # conv2 MACs, no bias
    + 16 * 8 * 8  # ReLU
    + 16 * 8 * 8  # global average pool
    + 16 * 10
    + 10  # head
)


def small_mlp() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 64), nn.ReLU(), nn.Linear(64, 10))


SMALL_MLP_FLOPS = 3072 * 64 + 64 + 64 + 64 * 10 + 10


def values(scores) -> dict[str, float | None]:
    return {k: v.value for k, v in scores.items()}


def assert_matches(name: str, got: float | None, want: float) -> None:
    assert got is not None, f"{name}: library gave None, reference {want}"
    assert math.isfinite(want) and want != 0, f"{name}: degenerate reference value {want}"
    if name in ("relu", "params"):
        assert got == want, f"{name}: {got} != {want}"
    elif name == "relu_logdet":
        assert abs(got - want) <= 1e-6 * abs(want), f"{name}: {got} != {want}"
    else:
        assert got == pytest.approx(want, rel=1e-4, abs=1e-12), f"{name}: {got} != {want}"


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """The networks here are tiny: intra-op threads only add spin-waiting (and on a busy 2-core
    machine multiply the run time several-fold). Restored for the other test modules."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def batch() -> tuple[torch.Tensor, torch.Tensor]:
    x, y = fixed_batches(load_embedded_cifar10(), 16, 1, seed=0)[0]
    return x, y


@pytest.fixture(scope="module")
def nb201_results(batch):
    """For every small NB201 net: (net, all-ten library scores, reference scores)."""
    x, y = batch
    out = []
    for i, arch in enumerate(ARCHS):
        net = small_net(arch, seed=10 + i)
        ref = reference_scores(net, x, y)  # each on its own deepcopy
        lib = values(score_module(net, x, y))
        out.append((net, lib, ref))
    return out


# --------------------------------------------------------------------------- equivalence


@pytest.mark.parametrize("i", range(len(ARCHS)))
def test_shared_pass_matches_separate_references(nb201_results, i):
    net, lib, ref = nb201_results[i]
    assert list(lib) == ALL
    for name, want in ref.items():
        assert_matches(name, lib[name], want)
    expected_params, expected_flops = network_cost(SPACE.parse(ARCHS[i]), C=8, N=1)
    assert lib["params"] == pytest.approx(expected_params / 1e6, abs=1e-12)
    assert lib["flops"] == pytest.approx(expected_flops / 1e6, abs=1e-12)


def test_references_distinguish_networks(nb201_results):
    """The comparison is not vacuous: the proxies differ between the three cells."""
    for name in ("grad_norm", "snip", "grasp", "fisher", "jacob_cov", "synflow", "relu_logdet", "params"):
        vals = [lib[name] for _, lib, _ in nb201_results]
        assert len(set(vals)) == len(vals), f"{name} identical across cells: {vals}"


@pytest.mark.parametrize("name", ALL)
def test_each_estimator_alone_equals_all_together(nb201_results, batch, name):
    net, lib, _ = nb201_results[0]
    x, y = batch
    alone = values(score_module(net, x, y, [name]))
    assert list(alone) == [name]
    assert alone[name] == pytest.approx(lib[name], rel=1e-7, abs=1e-12)


@pytest.mark.parametrize(
    "subset",
    [
        ["snip", "grasp"],
        ["grasp", "jacob_cov"],
        ["fisher", "jacob_cov", "relu_logdet"],
        ["relu", "grad_norm", "synflow", "params"],
        ["fisher", "grasp", "flops"],
    ],
)
@pytest.mark.parametrize("i", [1, 2])
def test_subsets_equal_all_together(nb201_results, batch, subset, i):
    net, lib, _ = nb201_results[i]
    x, y = batch
    got = values(score_module(net, x, y, subset))
    assert list(got) == subset
    for name in subset:
        assert got[name] == pytest.approx(lib[name], rel=1e-7, abs=1e-12), name


@pytest.mark.parametrize("make, flops", [(SmallCNN, SMALL_CNN_FLOPS), (small_mlp, SMALL_MLP_FLOPS)])
def test_user_modules_match_references(batch, make, flops):
    x, y = batch
    torch.manual_seed(3)
    net = make()
    ref = reference_scores(net, x, y)
    lib = values(score_module(net, x, y))
    for name, want in ref.items():
        assert_matches(name, lib[name], want)
    assert lib["flops"] == pytest.approx(flops / 1e6, abs=1e-12)
    assert lib["params"] == sum(p.numel() for p in net.parameters()) / 1e6


def test_shared_pass_intermediates(nb201_results, batch):
    """The shared intermediates themselves, against plain autograd on a copy."""
    net, _, _ = nb201_results[0]
    x, y = batch
    res = run_shared_pass(net, x, y, set(known_needs()))
    twin = small_net(ARCHS[0], seed=10)
    twin.train()
    out = twin(x)
    torch.nn.functional.cross_entropy(out, y).backward()
    layers = [m for m in twin.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert len(res.weight_grads) == len(layers) == len(res.fisher) == len(res.hessian_grad)
    for g, m in zip(res.weight_grads, layers):
        torch.testing.assert_close(g, m.weight.grad, rtol=1e-5, atol=1e-8)
    xr = x.clone().requires_grad_(True)
    twin(xr).sum().backward()
    torch.testing.assert_close(res.input_grads, xr.grad, rtol=1e-5, atol=1e-8)
    assert res.relu_count == sum(isinstance(m, nn.ReLU) for m in twin.modules())
    assert res.relu_kernel.shape == (16, 16) and res.relu_kernel.dtype == torch.float64
    with pytest.raises(ValueError, match="unknown shared-pass needs"):
        run_shared_pass(net, x, y, {"weight_grads", "bogus"})
    with pytest.raises(ValueError, match="labels"):
        run_shared_pass(net, x, None, {"weight_grads"})


def test_one_forward_pass_serves_every_data_proxy(batch):
    x, y = batch
    net = small_net(ARCHS[0])
    calls = []
    handle = net.register_forward_hook(lambda m, i, o: calls.append(i[0].shape[0]))
    try:  # the built-in ones: a plugin that reads no shared quantity runs its own pass; and those that read the
        # batch's pass (the passes on inputs of their own: tests/test_modern_proxies.py)
        got = values(
            score_module(net, x, y, [n for n in DATA_PROXIES if n in BUILT_IN and PROXIES[n].needs <= MAIN_NEEDS])
        )
    finally:
        handle.remove()
    assert all(v is not None for v in got.values())
    assert calls == [16]


# --------------------------------------------------------------------------- network untouched


def _snapshot(net: nn.Module):
    return (
        {k: v.detach().clone() for k, v in net.named_parameters()},
        {k: v.requires_grad for k, v in net.named_parameters()},
        {k: m.training for k, m in net.named_modules()},
    )


@pytest.mark.parametrize("net_mode", ["train", "eval"])
@pytest.mark.parametrize("bn_mode", ["train", "eval"])
def test_network_untouched(batch, net_mode, bn_mode):
    x, y = batch
    x_before = x.clone()
    net = small_net(ARCHS[1], seed=5)
    net.stem[0].weight.requires_grad_(False)  # a frozen Conv2d weight (scored layer)
    net.classifier.bias.requires_grad_(False)  # a frozen non-scored parameter
    net.train(net_mode == "train")
    params, flags, modes = _snapshot(net)
    buffers = {k: v.clone() for k, v in net.named_buffers()}

    scores = values(score_module(net, x, y, bn_mode=bn_mode))

    assert all(v is not None for v in scores.values()), scores
    params2, flags2, modes2 = _snapshot(net)
    assert flags2 == flags
    assert modes2 == modes
    for k in params:
        assert torch.equal(params[k], params2[k]), k
    assert all(p.grad is None for p in net.parameters())
    assert torch.equal(x, x_before) and not x.requires_grad
    for k, v in net.named_buffers():  # BN running statistics restored after a train-mode forward
        assert torch.equal(v, buffers[k]), k
    # params counts trainable parameters only: the frozen ones are not counted (before or after)
    assert scores["params"] == ref_params(net)
    assert scores["params"] < sum(p.numel() for p in net.parameters()) / 1e6


def test_mixed_submodule_modes_restored(batch):
    x, y = batch
    net = small_net(ARCHS[2], seed=5)
    net.train()
    net.stem[1].eval()  # e.g. a frozen BN
    _, _, modes = _snapshot(net)
    score_module(net, x, y, ["grad_norm"])
    assert _snapshot(net)[2] == modes


# --------------------------------------------------------------------------- BN mode


def test_bn_mode_eval_differs_from_train(batch):
    x, y = batch
    net = small_net(ARCHS[0], seed=3)
    train = score_module(net, x, y, ["grad_norm"], bn_mode="train")["grad_norm"].value
    evald = score_module(net, x, y, ["grad_norm"], bn_mode="eval")["grad_norm"].value
    assert abs(train - evald) > 1e-3 * abs(train)
    assert train == pytest.approx(ref_grad_norm(net, x, y, train=True), rel=1e-5)
    assert evald == pytest.approx(ref_grad_norm(net, x, y, train=False), rel=1e-5)


# --------------------------------------------------------------------------- protocol-level scoring

DET_ARCH = "|nor_conv_1x1~0|+|skip_connect~0|none~1|+|avg_pool_3x3~0|nor_conv_3x3~1|nor_conv_1x1~2|"


@pytest.fixture(scope="module")
def protocol_runs():
    protocol = Protocol(batch_size=16, num_batches=2, seed=1)
    rng = torch.get_rng_state()
    first = score_architecture(DET_ARCH, protocol=protocol)
    second = score_architecture(DET_ARCH, protocol=protocol)
    assert torch.equal(rng, torch.get_rng_state()), "score_architecture changed the global torch RNG"
    return protocol, first, second


def test_score_architecture_deterministic(protocol_runs):
    _, first, second = protocol_runs
    assert first.arch == second.arch == SPACE.parse(DET_ARCH)
    assert first.to_dict() == second.to_dict()
    assert list(first.scores) == ALL
    assert all(v.value is not None and math.isfinite(v.value) for v in first.scores.values()), first.to_dict()


def test_per_batch_and_aggregate(protocol_runs):
    _, first, _ = protocol_runs
    assert set(first.per_batch) == set(DATA_PROXIES)
    for name in DATA_PROXIES:
        vals = first.per_batch[name]
        assert len(vals) == 2 and all(v is not None for v in vals), name
        assert first.scores[name].value == pytest.approx((vals[0] + vals[1]) / 2, rel=1e-12, abs=1e-15), name
    # the two fixed batches are different data: the per-batch values differ
    assert first.per_batch["grad_norm"][0] != first.per_batch["grad_norm"][1]
    assert first.per_batch["relu"] == [first.scores["relu"].value] * 2


def test_score_architecture_is_score_module_on_seeded_network(protocol_runs):
    """Network initialised from protocol.seed, scored on the fixed batches chosen by protocol.data_seed."""
    protocol, first, _ = protocol_runs
    batches = protocol_batches(protocol)
    expected = fixed_batches(load_embedded_cifar10(), 16, 2, protocol.data_seed)
    for (xa, ya), (xb, yb) in zip(batches, expected):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    torch.manual_seed(protocol.seed)
    net = SPACE.build_network(SPACE.parse(DET_ARCH))
    got = values(score_module(net, batches[1][0], batches[1][1], ["grad_norm", "snip"]))
    assert got["grad_norm"] == pytest.approx(first.per_batch["grad_norm"][1], rel=1e-6)
    assert got["snip"] == pytest.approx(first.per_batch["snip"][1], rel=1e-6)


def test_other_seed_gives_other_grad_norm(protocol_runs):
    _, first, _ = protocol_runs
    other = score_architecture(
        DET_ARCH, estimators=["grad_norm"], protocol=Protocol(batch_size=16, num_batches=2, seed=2)
    )
    assert list(other.scores) == ["grad_norm"]
    assert other.scores["grad_norm"].value != pytest.approx(first.scores["grad_norm"].value, rel=1e-3)


def _published_cells(n: int = 4):
    pub = published_by_arch("nb201")
    cells = list(pub["params"])
    return [cells[i] for i in np.linspace(0, len(cells) - 1, n).astype(int)]


@pytest.mark.parametrize("arch", _published_cells(), ids=lambda a: SPACE.to_string(a))
def test_params_flops_equal_published(arch):
    pub = published_by_arch("nb201")
    res = score_architecture(arch, estimators=["flops", "params"])
    assert list(res.scores) == ["flops", "params"]
    assert res.per_batch == {}
    assert res.scores["params"].value == pytest.approx(pub["params"][arch], abs=1e-6)
    assert res.scores["flops"].value == pytest.approx(pub["flops"][arch], rel=1e-3)


@pytest.mark.parametrize("arch", _published_cells(2), ids=lambda a: SPACE.to_string(a))
def test_built_network_counts_equal_published(arch):
    """Counting the built standard network (C=16, N=5) gives the published params/flops too."""
    pub = published_by_arch("nb201")
    net = SPACE.build_network(arch)
    got = values(score_module(net, None, None, ["params", "flops"]))
    assert got["params"] == pytest.approx(pub["params"][arch], abs=1e-6)
    assert got["flops"] == pytest.approx(pub["flops"][arch], rel=1e-3)


# --------------------------------------------------------------------------- degenerate cells


def test_degenerate_cell_gives_null_with_reason():
    res = score_architecture(
        ALL_NONE,
        estimators=["jacob_cov", "relu_logdet", "params", "flops"],
        protocol=Protocol(batch_size=16, num_batches=1),
    )
    for name in ("jacob_cov", "relu_logdet"):
        v = res.scores[name]
        assert v.value is None, (name, v)
        assert isinstance(v.reason, str) and v.reason.strip(), (name, v)
        assert res.per_batch[name] == [None]
        assert res.to_dict()["scores"][name] == {"value": None, "reason": v.reason}
    params, flops = network_cost(ALL_NONE)
    assert res.scores["params"].value == pytest.approx(params / 1e6, abs=1e-12)
    assert res.scores["flops"].value == pytest.approx(flops / 1e6, abs=1e-12)
    assert res.scores["params"].value > 0 and res.scores["flops"].value > 0


def test_degenerate_small_network_and_missing_relu(batch):
    x, y = batch
    got = score_module(small_net(ALL_NONE), x, y, ["jacob_cov", "relu_logdet", "params"])
    assert got["jacob_cov"].value is None and got["jacob_cov"].reason
    assert got["relu_logdet"].value is None and got["relu_logdet"].reason
    assert got["params"].value > 0
    linear = nn.Sequential(nn.Flatten(), nn.Linear(3072, 10))  # no nn.ReLU at all
    got = score_module(linear, x, y, ["relu_logdet", "relu", "jacob_cov"])
    assert got["relu_logdet"].value is None and "ReLU" in got["relu_logdet"].reason
    assert got["relu"].value == 0.0
    assert got["jacob_cov"].value is not None
    one = score_module(small_net(ARCHS[0]), x[:1], y[:1], ["jacob_cov"])
    assert one["jacob_cov"].value is None and one["jacob_cov"].reason


def test_data_free_estimators_need_no_batch(batch):
    net = small_net(ARCHS[0])
    got = values(score_module(net, None, None, ["synflow", "params", "flops"]))
    assert all(v is not None and v > 0 for v in got.values())
    x, y = batch
    assert got["synflow"] == pytest.approx(values(score_module(net, x, y, ["synflow"]))["synflow"], rel=1e-12)
    with pytest.raises(ValueError, match="need a data batch"):
        score_module(net, None, None, ["params", "snip"])


# --------------------------------------------------------------------------- registry


@pytest.mark.parametrize("name", BUILT_IN_ZERO_SHOT)
def test_registry_entry(name):
    info = ZERO_SHOT[name]
    assert info.name == name
    assert name in PROXIES and PROXIES[name].name == name
    assert PROXIES[name].needs <= known_needs()
    assert info.direction == "higher"
    assert info.kind == "zero_shot"
    assert isinstance(info.version, str) and info.version.strip()
    assert info.to_dict()["name"] == name
    # batch-free proxies read no shared pass; data proxies read at least one quantity
    assert (name in BATCH_FREE) == (not PROXIES[name].needs)
    if not info.needs_data:
        assert name in BATCH_FREE


def test_registry_complete():
    assert set(BUILT_IN_ZERO_SHOT) <= set(PROXIES) <= set(ZERO_SHOT)  # a plugin's once its module is imported
    assert len(BUILT_IN_ZERO_SHOT) == 25


def test_resolve_estimators():
    assert resolve_estimators(None) == ALL
    assert resolve_estimators(["all"]) == ALL
    assert resolve_estimators(["snip", "grasp", "snip", "params", "grasp"]) == ["snip", "grasp", "params"]
    assert resolve_estimators(("flops", "grad_norm")) == ["flops", "grad_norm"]
    with pytest.raises(KeyError) as err:
        resolve_estimators(["snip", "bogus_proxy", "zen"])
    assert "bogus_proxy" in str(err.value) and "zen" in str(err.value)
    with pytest.raises(KeyError, match="nope"):
        score_module(nn.Linear(2, 2), None, None, ["params", "nope"])


def test_duplicate_registration_rejected():
    before = dict(PROXIES)
    with pytest.raises(ValueError, match="already registered"):
        register_proxy("snip")(lambda inp: 0.0)
    with pytest.raises(ValueError, match="manifest"):
        register_proxy("not_in_manifest")(lambda inp: 0.0)
    assert PROXIES == before


_BLOCK_TORCH = """
import sys
class BlockTorch:
    tried = []
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            BlockTorch.tried.append(name)
            raise ImportError("torch import blocked: " + name)
        return None
sys.meta_path.insert(0, BlockTorch())
{code}
assert "torch" not in sys.modules, "torch was imported"
assert not BlockTorch.tried, BlockTorch.tried
print("OK")
"""


def _run_without_torch(code: str) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter where any import of torch fails and is recorded."""
    return subprocess.run(
        [sys.executable, "-c", _BLOCK_TORCH.replace("{code}", code)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


TORCH_FREE = [
    "archscore.estimators.zero_shot.manifest",
    "archscore.estimators.zero_shot",
    "archscore.estimators.spaces",
    "archscore.estimators.protocol",
    "archscore.estimators.truth",
    "archscore.estimators.ranking",
    "archscore.estimators.datasets",
]


def test_torch_free_modules():
    proc = _run_without_torch("\n".join(f"import {m}" for m in TORCH_FREE))
    assert proc.returncode == 0 and proc.stdout.strip() == "OK", proc.stderr
    # ... and the guard does catch a torch import (the engine needs torch)
    proc = _run_without_torch("import archscore.estimators.zero_shot.engine")
    assert proc.returncode != 0 and "torch import blocked" in proc.stderr


def test_manifest_lists_the_same_without_torch():
    proc = _run_without_torch(
        "import archscore.estimators.zero_shot.manifest as m\n"
        "print(','.join(m.list_zero_shot()))\n"
        "from archscore.estimators.protocol import Protocol\n"
        "print(Protocol(batch_size=32, num_batches=2, seed=1).hash())"
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.split()
    assert lines[0] == ",".join(ALL)
    # the protocol hash is the same in another process (no hash randomisation involved)
    assert lines[1] == Protocol(batch_size=32, num_batches=2, seed=1).hash()


# --------------------------------------------------------------------------- protocol


def test_protocol_hash_stable_for_equal_protocols():
    a = Protocol(batch_size=64, num_batches=3, seed=5)
    b = Protocol(seed=5, num_batches=3, batch_size=64)
    assert a == b
    assert a.hash() == b.hash()
    assert Protocol().hash() == Protocol().hash()
    assert len(a.hash()) == 16 and int(a.hash(), 16) >= 0


@pytest.mark.parametrize(
    "change",
    [
        {"dataset": "cifar100"},
        {"data_root": "/data/cifar"},
        {"batch_size": 64},
        {"num_batches": 3},
        {"seed": 21},
        {"bn_mode": "eval"},
        {"data_seed": 3},
        {"oneshot": {"supernet": "a" * 64}},
        {"inputs": "noise"},
        {"weights": "b" * 64},
        {"init": "random", "weights": "b" * 64},  # init alone means nothing: tests/test_weights.py
        {"per_member": True},
    ],
    ids=lambda c: next(iter(c)),
)
def test_protocol_hash_changes_with_every_field(change):
    base = Protocol()
    changed = Protocol(**change)
    assert changed != base
    assert changed.hash() != base.hash()
    # covered: every field of the model is exercised by this parametrisation
    assert set(Protocol.model_fields) == {
        "dataset",
        "data_root",
        "batch_size",
        "num_batches",
        "seed",
        "bn_mode",
        "data_seed",
        "oneshot",
        "inputs",
        "weights",
        "init",
        "per_member",
    }


def test_one_shot_settings_change_the_hash_and_leave_zero_shot_hashes_alone():
    from archscore.estimators.protocol import OneShotSettings

    assert Protocol().hash() == "444d4719d950e139"  # the hash of the defaults before one-shot settings existed
    base = OneShotSettings(supernet="a" * 64)
    assert Protocol(oneshot=base).hash() == "195549afcf59fe06"  # the same before the images setting existed
    hashes = {Protocol(oneshot=base).hash()}
    for change in (
        {"supernet": "b" * 64},
        {"bn_mode": "recalibrate"},
        {"post_deiso": False},
        {"batch_size": 50},
        {"num_batches": 2},
        {"images": "held_out"},
    ):
        hashes.add(Protocol(oneshot=base.model_copy(update=change)).hash())
    assert len(hashes) == 7
    with pytest.raises(pydantic.ValidationError, match="at most 500"):
        OneShotSettings(supernet="a" * 64, num_batches=6)
    assert OneShotSettings(supernet="a" * 64, num_batches=15, images="held_out").num_batches == 15


def test_protocol_rejects_extra_and_invalid_fields():
    with pytest.raises(pydantic.ValidationError):
        Protocol(batch_size=32, extra_field=1)
    with pytest.raises(pydantic.ValidationError):
        Protocol(bn_mode="frozen")
    with pytest.raises(pydantic.ValidationError):
        Protocol(batch_size=0)
    p = Protocol()
    with pytest.raises(pydantic.ValidationError):
        p.seed = 3  # frozen: a protocol cannot change under its cache key
