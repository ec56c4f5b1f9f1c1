"""The NB201 supernet is all standalone networks at once: with the same weights, the supernet's
output for an architecture equals the output of that architecture's standalone network."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from archscore.estimators.spaces import get_space
from archscore.estimators.spaces.nb201 import CONV_OPS, EDGES, live_edges
from archscore.estimators.spaces.nb201.supernet import NB201Supernet

SPACE = get_space("nb201")


def reachable_from_input(arch) -> set[int]:
    nodes = {0}
    for pos, (s, t) in enumerate(EDGES):
        if arch[pos] != "none" and s in nodes:
            nodes.add(t)
    return nodes


def conv_on_unreachable_source(arch) -> bool:
    """A conv fed by a node that is always zero: the standalone network adds its BN shift there."""
    reach = reachable_from_input(arch)
    return any(op in CONV_OPS and s not in reach for op, (s, _) in zip(arch, EDGES))


def randomise_bn(net: nn.Module, shift: bool) -> None:
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5) if shift else m.bias.zero_()


@pytest.fixture(scope="module")
def batch():
    return torch.randn(8, 3, 32, 32, generator=torch.Generator().manual_seed(0))


def compare(supernet, arch, x, train: bool) -> float:
    net = SPACE.build_network(arch, C=8, N=1)
    net.load_state_dict(supernet.standalone_state_dict(arch), strict=True)
    net.train(train)
    supernet.train(train)
    with torch.no_grad():
        return (net(x) - supernet(x, arch)).abs().max().item()


@pytest.mark.parametrize("train", [True, False], ids=["bn-train", "bn-eval"])
def test_supernet_equals_standalone_networks_with_the_same_weights(batch, train):
    torch.manual_seed(1)
    supernet = NB201Supernet(C=8, N=1)
    randomise_bn(supernet, shift=True)
    archs = [a for a in SPACE.sample(80, 2) if not conv_on_unreachable_source(a)]
    assert len(archs) > 50
    for arch in archs:
        assert compare(supernet, arch, batch, train) < 1e-5, SPACE.to_string(arch)


def test_edges_from_dead_nodes_differ_only_by_the_bn_shift(batch):
    """Such edges are skipped by the supernet (docs/concepts/estimators.md); the standalone network maps their zero
    input to the BN shift, so the two agree exactly once the shifts are zero."""
    archs = [a for a in SPACE.sample(300, 3) if conv_on_unreachable_source(a)][:8]
    assert archs
    torch.manual_seed(4)
    supernet = NB201Supernet(C=8, N=1)
    randomise_bn(supernet, shift=False)
    for arch in archs:
        assert compare(supernet, arch, batch, True) < 1e-5, SPACE.to_string(arch)
    randomise_bn(supernet, shift=True)
    assert max(compare(supernet, arch, batch, True) for arch in archs) > 1e-3


def test_weights_are_shared_per_cell_edge_and_op():
    supernet = NB201Supernet(C=8, N=1)
    a = SPACE.parse("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|")
    b = SPACE.parse("|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|none~0|nor_conv_3x3~1|skip_connect~2|")
    sa, sb = supernet.standalone_state_dict(a), supernet.standalone_state_dict(b)
    shared = "cells.0.edges.0.1.weight"  # conv of edge 0->1, used by both
    assert sa[shared].data_ptr() == sb[shared].data_ptr()
    assert "cells.0.edges.1.1.weight" in sa and sa["cells.0.edges.1.1.weight"].shape[2:] == (3, 3)
    assert sb["cells.0.edges.1.1.weight"].shape[2:] == (1, 1)


def test_only_the_architecture_ops_on_live_edges_run():
    supernet = NB201Supernet(C=8, N=1)
    arch = SPACE.parse("|nor_conv_3x3~0|+|nor_conv_1x1~0|none~1|+|none~0|none~1|skip_connect~2|")
    assert live_edges(arch) == (False, True, False, False, False, True)  # 0->1 leads nowhere
    calls = []
    hooks = [
        m.register_forward_hook(lambda m, i, o: calls.append(m)) for m in supernet.modules() if isinstance(m, nn.Conv2d)
    ]
    supernet(torch.randn(2, 3, 32, 32), arch)
    for h in hooks:
        h.remove()
    in_cells = {m for cell in supernet.cells[::2] for m in cell.modules()}  # cells 0, 2, 4; 1 and 3 reduce
    ran = [m for m in calls if m in in_cells]
    expected = [cell.edges[1]["nor_conv_1x1"][1] for cell in supernet.cells[::2]]  # edge 0->2
    assert ran == expected
