"""On a GPU the tangent kernel (ntk_cond) and vkdnw's Jacobian take their backward passes, one per image or
per class, several at once (passes/cotangents.py). Forced on here, on the CPU, that path must give what the
one-at-a-time passes give: the same gradients of the same graph."""

from __future__ import annotations

import pytest
import torch
from helpers.proxies import InplaceCNN, proxy_batches, small_net
from torch import nn

from archscore.estimators.zero_shot.passes import cotangents
from archscore.estimators.zero_shot.passes import fisher_information as fisher_pass
from archscore.estimators.zero_shot.passes.registry import PassInputs
from archscore.estimators.zero_shot.passes.tangent_kernel import tangent_kernel

pytestmark = pytest.mark.usefixtures("one_thread")
ARCH = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
NETWORKS = {"nb201": lambda: small_net(ARCH, 3), "inplace-cnn": lambda: (torch.manual_seed(4), InplaceCNN())[1]}


def batched_everywhere(monkeypatch) -> None:
    """The GPU's path on this CPU, in uneven chunks (24 images: 5, 5, 5, 5, 4)."""
    monkeypatch.setattr(cotangents, "batched_on", lambda device: True)
    monkeypatch.setattr(cotangents, "COTANGENTS_AT_ONCE", 5)


@pytest.mark.parametrize("key", list(NETWORKS))
def test_the_batched_backward_gives_the_same_tangent_kernel(key, monkeypatch):
    x, y, noise = proxy_batches()
    net = NETWORKS[key]()
    inputs = PassInputs(net, x, y, noise, 0, [])
    one_at_a_time = tangent_kernel(inputs)
    batched_everywhere(monkeypatch)
    batched = tangent_kernel(inputs)
    assert one_at_a_time is not None and batched is not None and one_at_a_time.shape == (24, 24)
    assert one_at_a_time.abs().max() > 0
    torch.testing.assert_close(batched, one_at_a_time, rtol=1e-6, atol=0)


@pytest.mark.parametrize("key", list(NETWORKS))
def test_the_batched_backward_gives_the_same_fisher_jacobian(key, monkeypatch):
    _, _, noise = proxy_batches()
    net = NETWORKS[key]().eval()
    owners = fisher_pass._first_weight_owners(net, list(net.named_parameters())[: fisher_pass.FISHER_TENSORS])
    assert owners is not None
    logits, one_at_a_time = fisher_pass._jacobians_by_hooks(net, noise, owners)
    batched_everywhere(monkeypatch)
    _, batched = fisher_pass._jacobians_by_hooks(net, noise, owners)
    assert one_at_a_time.shape == (8, logits.shape[1], len(owners)) and one_at_a_time.abs().max() > 0
    torch.testing.assert_close(batched, one_at_a_time, rtol=1e-6, atol=1e-12)


def test_each_cotangent_gets_its_own_gradient_and_an_unreached_weight_none(monkeypatch):
    """Row i's cotangent (ones on output row i) gives ∂(Σ out[i])/∂W = 1 x_iᵀ for a linear layer, in both
    paths; a weight off the graph gets None (allow_unused)."""
    torch.manual_seed(0)
    used, unused, x = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2), torch.randn(4, 3)
    each_row = torch.eye(4)[:, :, None].expand(4, 4, 2)
    for batched in (False, True):
        monkeypatch.setattr(cotangents, "batched_on", lambda device, b=batched: b)
        grads = list(cotangents.grads_along(used(x), [used.weight, unused.weight], each_row))
        assert len(grads) == 4
        for i, (weight_grad, unreached) in enumerate(grads):
            assert unreached is None
            torch.testing.assert_close(weight_grad, torch.ones(2, 1) * x[i])


class ReadsItemInBackward(torch.autograd.Function):
    """A user's operation whose backward reads a Python number: vmap cannot batch it."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        return x * 2

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        return grad * (2.0 if grad.abs().sum().item() >= 0 else 0.0)


class WithUserOperation(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.inner = InplaceCNN()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = ReadsItemInBackward.apply(self.inner.features(x))
        return self.inner.head(features.mean((2, 3)))


def test_a_backward_vmap_cannot_batch_falls_back_to_one_at_a_time(monkeypatch):
    x, y, noise = proxy_batches()
    torch.manual_seed(5)
    net = WithUserOperation()
    inputs = PassInputs(net, x, y, noise, 0, [])
    one_at_a_time = tangent_kernel(inputs)
    batched_everywhere(monkeypatch)
    with pytest.raises(RuntimeError):  # the batched backward alone fails on this network
        torch.autograd.grad(net(x).sum(1), list(net.parameters()), torch.eye(24)[:2], is_grads_batched=True)
    batched = tangent_kernel(inputs)
    assert one_at_a_time is not None and batched is not None
    torch.testing.assert_close(batched, one_at_a_time, rtol=1e-6, atol=0)
