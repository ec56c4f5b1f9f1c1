"""Networks too large for a worker's memory are refused before they are built, with the batch size
that fits, and the refusal is never cached; the estimate counts feature maps exactly on every space."""

from __future__ import annotations

import re

import pytest
import torch

from archscore.estimators.protocol import Protocol
from archscore.estimators.spaces import get_space, list_spaces
from archscore.estimators.zero_shot import memory
from archscore.estimators.zero_shot.engine import score_architecture

NETWORK_SPACES = [n for n in list_spaces() if get_space(n).has("network") and get_space(n).samples]
MEDIUM = "d4-4-4_w64-64-64"  # an NDS ResNet of about 2 million feature elements per sample


@pytest.mark.parametrize("name", NETWORK_SPACES)
def test_feature_elements_are_counted_exactly_and_leave_the_network_as_it_was(name):
    space = get_space(name)
    arch = min(space.sample(5, seed=0), key=lambda a: space.cost(a)[1])
    with torch.device("meta"):
        meta_net = space.build_network(arch)
    real_net = space.build_network(arch).train()
    before = {k: v.clone() for k, v in real_net.state_dict().items()}
    elements = memory.feature_elements(real_net)
    assert elements == memory.feature_elements(meta_net) > 0  # shapes alone give the same count
    assert real_net.training and all(torch.equal(before[k], v) for k, v in real_net.state_dict().items())


def test_a_network_over_the_limit_gets_nulls_naming_the_batch_size_that_fits():
    space = get_space("nds_resnet")
    limit = 1000 * 2**20
    result = score_architecture(
        MEDIUM, space.name, ["synflow", "jacob_cov", "params"], Protocol(batch_size=128), memory_limit=limit
    )
    assert result.scores["params"].value == space.cost(space.parse(MEDIUM))[0] / 1e6  # no network needed
    for name in ("synflow", "jacob_cov"):
        value = result.scores[name]
        assert value.value is None and value.transient
        assert "needs about" in value.reason and "at batch_size 128" in value.reason
    fits = int(re.search(r"a batch_size of at most (\d+) fits", result.scores["synflow"].reason).group(1))
    assert 1 <= fits < 128
    again = score_architecture(
        MEDIUM, space.name, ["synflow", "jacob_cov"], Protocol(batch_size=fits), memory_limit=limit
    )
    assert all(v.value is not None and not v.transient for v in again.scores.values())
    nothing = score_architecture(MEDIUM, space.name, ["synflow"], Protocol(batch_size=8), memory_limit=2**20)
    assert "no batch size fits" in nothing.scores["synflow"].reason


def test_the_limit_comes_from_the_environment_and_a_bad_value_is_refused(monkeypatch):
    monkeypatch.setenv(memory.MEMORY_LIMIT_ENV, "1500")
    assert memory.memory_limit() == 1500 * 2**20
    monkeypatch.setenv(memory.MEMORY_LIMIT_ENV, "lots")
    with pytest.raises(ValueError, match="ARCHSCORE_MEMORY_LIMIT_MB must be a number of MiB"):
        memory.memory_limit()
    monkeypatch.delenv(memory.MEMORY_LIMIT_ENV)
    assert 0 < memory.memory_limit() < 2**50


@pytest.mark.usefixtures("celery_worker")  # the worker runs in a thread of this process: it sees the variable
def test_the_service_reports_a_refusal_as_an_error_and_does_not_cache_it(client, monkeypatch):
    monkeypatch.setenv(memory.MEMORY_LIMIT_ENV, "1000")
    request = {
        "space": "nds_resnet",
        "archs": [MEDIUM],
        "estimators": ["synflow", "params"],
        "protocol": {"batch_size": 128, "seed": 411},
    }
    job = client.post("/v1/scores?wait=120", json=request).json()
    assert job["status"] == "done", job
    result = job["results"][0]
    assert "needs about" in result["error"] and "a batch_size of at most" in result["error"]
    # a worker with more memory scores it: nothing of the refusal was cached
    monkeypatch.setenv(memory.MEMORY_LIMIT_ENV, str(64 * 1024))
    job = client.post("/v1/scores?wait=120", json={**request, "protocol": {"batch_size": 8, "seed": 411}}).json()
    assert job["status"] == "done" and job["results"][0]["error"] is None
    job = client.post("/v1/scores?wait=120", json=request).json()
    assert job["results"][0]["error"] is None and job["results"][0]["scores"]["synflow"] is not None


def test_ntk_conds_gradient_rows_count_in_the_estimate():
    """ntk_cond holds one float32 gradient of every weight per image (64 at most): a limit that fits the
    batch's pass refuses ntk_cond, names a batch that fits it, and still scores the other proxies."""
    space = get_space("nb201")
    arch = space.sample(1, seed=0)[0]
    net = space.build_network(arch)
    elements, params = memory.feature_elements(net), sum(p.numel() for p in net.parameters())
    assert memory.gradient_rows({"tangent_kernel"}, 128) == 64 and memory.gradient_rows({"tangent_kernel"}, 8) == 8
    batch_pass = memory.scoring_bytes(elements, params, 16)
    with_rows = memory.scoring_bytes(elements, params, 16, rows=16)
    assert with_rows - batch_pass == 4 * 16 * params
    limit = (batch_pass + with_rows) // 2
    protocol = Protocol(batch_size=16)
    refused = score_architecture(arch, space.name, ["ntk_cond"], protocol, memory_limit=limit).scores["ntk_cond"]
    assert refused.value is None and refused.transient and "at batch_size 16" in refused.reason
    scored = score_architecture(arch, space.name, ["synflow"], protocol, memory_limit=limit).scores["synflow"]
    assert scored.value is not None
