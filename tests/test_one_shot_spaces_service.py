"""Supernets of the other spaces through the service, with a real Redis and a real Celery worker:
trained over the API, served by the running worker without a restart, one-shot scores through
POST /v1/scores equal to the library's, and training requests checked per space."""

from __future__ import annotations

import random

import pytest
from helpers.http import error_fields

from archscore.estimators.one_shot.checkpoints import load_checkpoint
from archscore.estimators.one_shot.evaluation import score_arch, validation_batches
from archscore.estimators.one_shot.samplers import SAMPLERS
from archscore.estimators.spaces import get_space

pytestmark = pytest.mark.usefixtures("celery_worker")

TINY = {
    "nb101": {"stem_channels": 4, "num_stacks": 2, "cells_per_stack": 1},
    "nds_resnet": {"max_depth": 2, "max_width": 32},
}
STEPS = {"epochs": 1, "steps_per_epoch": 2, "batch_size": 32}


def train(client, name: str, space: str) -> dict:
    resp = client.post("/v1/supernets", json={"name": name, "space": space, "network": TINY[space], **STEPS})
    assert resp.status_code == 202, resp.text
    done = client.get(f"/v1/jobs/{resp.json()['job_id']}", params={"wait": 60}).json()
    assert done["status"] == "done", done
    return done


@pytest.mark.parametrize("space_name", list(TINY))
def test_a_new_checkpoint_of_the_space_is_trained_and_served_by_the_running_worker(client, supernet_dir, space_name):
    import archscore.workers.supernets as held

    space = get_space(space_name)
    loads = held.loads
    job = train(client, f"{space_name}-tiny", space_name)
    checkpoint = job["checkpoint"]
    assert checkpoint["space"] == space_name and checkpoint["network"]["num_classes"] == 10
    assert job["config"]["network"] == TINY[space_name]
    net, manifest = load_checkpoint(supernet_dir / f"{space_name}-tiny")
    archs = SAMPLERS["uniform"](net.sampling_space(space), random.Random(11), 3)
    body = {
        "space": space_name,
        "archs": [space.to_json(a) for a in archs],
        "estimators": ["oneshot_acc", "oneshot_loss"],
        "protocol": {"oneshot": {"num_batches": 1}},
    }  # the newest complete checkpoint of this space
    resp = client.post("/v1/scores", params={"wait": 60}, json=body)
    assert resp.status_code == 200, resp.text
    scored = resp.json()
    assert scored["status"] == "done" and scored["protocol"]["oneshot"]["supernet"] == checkpoint["sha256"]
    batches = validation_batches(manifest, 100, 1)
    for result, arch in zip(scored["results"], archs):
        want = score_arch(net.eval(), arch, batches)
        assert result["scores"]["oneshot_acc"] == pytest.approx(want["oneshot_acc"])
        assert result["scores"]["oneshot_loss"] == pytest.approx(want["oneshot_loss"], rel=1e-5)
    assert held.loads == loads + 1  # loaded by the worker that was already running


def test_architectures_outside_an_nds_supernet_get_a_null_with_the_reason(client, supernet_dir):
    if not (supernet_dir / "nds_resnet-tiny").exists():
        train(client, "nds_resnet-tiny", "nds_resnet")
    body = {
        "space": "nds_resnet",
        "archs": ["d1-1-1_w16-16-16", "d1-1-1_w16-16-256"],
        "estimators": ["oneshot_acc", "params"],
        "protocol": {"oneshot": {"supernet": "nds_resnet-tiny", "num_batches": 1}},
    }
    resp = client.post("/v1/scores", params={"wait": 60}, json=body)
    assert resp.status_code == 200, resp.text
    inside, outside = resp.json()["results"]
    assert isinstance(inside["scores"]["oneshot_acc"], float)
    assert outside["scores"]["oneshot_acc"] is None and outside["scores"]["params"] > 0
    assert "at most 2 blocks of width 32" in outside["reasons"]["oneshot_acc"]


def test_a_checkpoint_of_another_space_is_refused_for_scoring(client, supernet_dir):
    if not (supernet_dir / "nb101-tiny").exists():
        train(client, "nb101-tiny", "nb101")
    body = {
        "space": "nb301",
        "archs": [get_space("nb301").to_json(get_space("nb301").sample(1, 0)[0])],
        "estimators": ["oneshot_acc"],
        "protocol": {"oneshot": {"supernet": "nb101-tiny"}},
    }
    fields = error_fields(client.post("/v1/scores", json=body), 422)
    assert "is a supernet of nb101, not of nb301" in fields["protocol.oneshot.supernet"]


@pytest.mark.parametrize(
    ("body", "field", "reason"),
    [
        ({"space": "nope"}, "space", "unknown search space 'nope'"),
        ({"space": "nb301", "network": {"C": 999}}, "network.C", "must be in 2..64"),
        ({"space": "nb101", "network": {"C": 8}}, "network.C", "not a network setting of the nb101 supernet"),
        ({"space": "nds_resnexta", "network": {"max_width": 8}}, "network.max_width", "must be in 16..256"),
        ({"space": "nb301", "sampler": "deiso"}, "sampler", "nb301 has no isomorphism classes"),
        ({"schedule": "linear"}, "schedule", "'plateau' or 'cosine'"),
    ],
)
def test_training_requests_are_checked_per_space(client, supernet_dir, body, field, reason):
    fields = error_fields(client.post("/v1/supernets", json={"name": "bad", **STEPS, **body}), 422)
    assert reason in fields[field]
    assert not (supernet_dir / "bad").exists()


def test_reduced_sharing_over_the_api(client, supernet_dir):
    body = {"name": "nb101-k3", "space": "nb101", "network": {**TINY["nb101"], "partitions": 3}, **STEPS}
    resp = client.post("/v1/supernets", json=body)
    assert resp.status_code == 202, resp.text
    done = client.get(f"/v1/jobs/{resp.json()['job_id']}", params={"wait": 60}).json()
    assert done["status"] == "done" and done["checkpoint"]["network"]["partitions"] == 3, done
    net, manifest = load_checkpoint(supernet_dir / "nb101-k3")
    space = get_space("nb101")
    archs = space.sample(3, seed=13)
    scored = client.post(
        "/v1/scores",
        params={"wait": 60},
        json={
            "space": "nb101",
            "archs": [space.to_json(a) for a in archs],
            "estimators": ["oneshot_acc"],
            "protocol": {"oneshot": {"supernet": "nb101-k3", "num_batches": 1}},
        },
    ).json()
    batches = validation_batches(manifest, 100, 1)
    assert [r["scores"]["oneshot_acc"] for r in scored["results"]] == pytest.approx(
        [score_arch(net.eval(), a, batches)["oneshot_acc"] for a in archs]
    )
    too_many = client.post("/v1/supernets", json={**body, "name": "k4", "network": {"partitions": 4}})
    assert "at most 3 for nb101" in error_fields(too_many, 422)["network.partitions"]
