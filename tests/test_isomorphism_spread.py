"""Scores per member of an isomorphism class (protocol per_member) and the isomorphism_spread study: the
library's numbers, the same over HTTP with a real worker, and bad input refused."""

from __future__ import annotations

import json

import pytest
from helpers.http import error_fields
from helpers.scoring import PNG
from helpers.scoring import same as _same
from typer.testing import CliRunner

from archscore.estimators.analysis import StudyContext, get_study
from archscore.estimators.analysis.isomorphism_spread import architectures, per_member, within_share
from archscore.estimators.analysis.run import local_source
from archscore.estimators.protocol import OneShotSettings, Protocol
from archscore.estimators.spaces import get_space
from archscore.estimators.truth import load_builtin
from archscore.estimators.zero_shot.engine import score_architecture
from archscore.service.cli import app

NB201 = get_space("nb201")
STUDY = get_study("isomorphism_spread")


def _synflow(arch) -> float:
    return score_architecture(arch, "nb201", ["synflow"], Protocol(batch_size=4)).scores["synflow"].value


@pytest.fixture(scope="module")
def isomorphic_pair():
    """Two members of one class whose synflow scores differ (written differently, initialised differently)."""
    for members in NB201.isomorphism_classes().values():
        if len(members) >= 2 and NB201.representative(members[0]) in members[:2]:
            a, b = members[:2]
            if _synflow(a) != _synflow(b):
                return a, b
    pytest.fail("no isomorphic pair with different synflow scores")


def test_the_expansion_takes_up_to_n_members_of_each_class_once():
    classes = NB201.isomorphism_classes()
    big = next(m for m in classes.values() if len(m) >= 5)
    single = next(m[0] for m in classes.values() if len(m) == 1)
    asked = [big[3], single, big[1]]
    chosen = architectures(NB201, asked, {"members": 3})
    assert chosen[0] == big[3] and len(chosen) == 3  # the architecture asked for first, its class once
    assert all(NB201.canonical_key(a) == NB201.canonical_key(big[3]) for a in chosen)
    assert single not in chosen  # a class of one member has no spread
    assert chosen[1:] == sorted((m for m in big if m != big[3]), key=NB201.to_string)[:2]


def test_within_share_is_the_within_class_share_of_the_variance():
    assert within_share([1.0, 1.0, 5.0, 5.0], ["a", "a", "b", "b"]) == 0.0
    assert within_share([1.0, 3.0, 1.0, 3.0], ["a", "a", "b", "b"]) == 1.0
    assert within_share([2.0, 2.0], ["a", "b"]) is None  # no variance at all
    assert within_share([0.0, 2.0, 10.0, 12.0], ["a", "a", "b", "b"]) == pytest.approx(4 / 104)


def test_per_member_is_part_of_the_hash_and_turns_off_the_class_mean():
    assert Protocol(per_member=True).hash() != Protocol().hash()
    one_shot = Protocol(oneshot=OneShotSettings(supernet="a" * 64))
    assert per_member(one_shot).oneshot.post_deiso is False and per_member(one_shot).per_member
    with pytest.raises(ValueError, match="post_deiso"):
        Protocol(per_member=True, oneshot=OneShotSettings(supernet="a" * 64, post_deiso=True))


@pytest.mark.usefixtures("celery_worker")
def test_per_member_scores_each_member_on_its_own_over_http(client, isomorphic_pair):
    a, b = isomorphic_pair
    body = {
        "space": "nb201",
        "archs": [NB201.to_string(a), NB201.to_string(b)],
        "estimators": ["synflow"],
        "protocol": {"batch_size": 4},
    }
    shared = client.post("/v1/scores?wait=120", json=body).json()
    assert shared["status"] == "done", shared
    first, second = shared["results"]
    assert first["canonical_key"] == second["canonical_key"]
    assert first["scores"]["synflow"] == second["scores"]["synflow"]  # the class's one score
    own = client.post("/v1/scores?wait=120", json={**body, "protocol": {"batch_size": 4, "per_member": True}}).json()
    assert own["status"] == "done", own
    assert [r["scores"]["synflow"] for r in own["results"]] == pytest.approx([_synflow(a), _synflow(b)], rel=1e-6)
    assert own["results"][0]["scores"]["synflow"] != own["results"][1]["scores"]["synflow"]


def _library(archs, estimators, options):
    truth = load_builtin("nb201", "cifar10_test")
    protocol = Protocol(batch_size=4, seed=7)
    ctx = StudyContext(
        NB201,
        archs,
        [truth.get(a) for a in archs],
        estimators,
        protocol,
        local_source("nb201", archs, estimators, 1),
        options,
    )
    return STUDY.run(ctx)


@pytest.mark.usefixtures("celery_worker")
def test_the_study_over_http_gives_the_library_numbers(client):
    asked = NB201.sample(10, seed=3)
    options = {"members": 2}
    archs = architectures(NB201, asked, options)
    assert len(archs) >= 4
    resp = client.post(
        "/v1/studies",
        json={
            "study": "isomorphism_spread",
            "space": "nb201",
            "archs": [NB201.to_string(a) for a in asked],
            "estimators": ["synflow", "params"],
            "protocol": {"batch_size": 4, "seed": 7},
            "truth": "cifar10_test",
            "options": options,
        },
    )
    assert resp.status_code == 202, resp.text
    done = client.get(f"/v1/studies/{resp.json()['study_id']}?wait=120").json()
    assert done["status"] == "done", done
    expected = json.loads(json.dumps(_library(archs, ["synflow", "params"], options)))
    assert _same(done["result"]["result"], expected)
    assert expected["classes"] == len(archs) // 2 and expected["architectures"] == len(archs)
    assert set(done["figures"]) == {"isomorphism_spread_share", "isomorphism_spread_rank_span"}
    assert client.get(done["figures"]["isomorphism_spread_share"]).content.startswith(PNG)


def test_bad_study_requests_name_the_field(client):
    singles = [m[0] for m in NB201.isomorphism_classes().values() if len(m) == 1][:6]
    fields = error_fields(
        client.post(
            "/v1/studies",
            json={
                "study": "isomorphism_spread",
                "space": "nb201",
                "archs": [NB201.to_string(a) for a in singles],
                "estimators": ["params"],
                "truth": "cifar10_test",
            },
        ),
        422,
    )
    assert "classes of at least two members" in fields["archs"]
    fields = error_fields(
        client.post(
            "/v1/studies",
            json={
                "study": "isomorphism_spread",
                "space": "nb201",
                "archs": [NB201.to_string(NB201.sample(1, 0)[0])] * 4,
                "estimators": ["params"],
                "truth": "cifar10_test",
                "options": {"members": 1},
            },
        ),
        422,
    )
    assert "options.members" in fields


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("isomorphism_spread", "--sample", "8", "--members", "1"), "--members: give 2..16"),
        (("isomorphism_spread,complexity_bias", "--sample", "8"), "isomorphism_spread scores architectures of its own"),
        (("isomorphism_spread", "--space", "nb301", "--sample", "8"), "needs a space with isomorphism"),
    ],
)
def test_study_command_refuses_bad_input_with_exit_2(tmp_path, args, needle):
    result = CliRunner().invoke(app, ["study", *args, "-e", "params", "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and needle in result.output, result.output


def test_the_work_bound_counts_the_members_the_study_adds(client, settings_env):
    settings_env(max_work_per_request="2000")
    asked = [m[0] for m in NB201.isomorphism_classes().values() if len(m) >= 4][:4]
    body = {
        "study": "isomorphism_spread",
        "space": "nb201",
        "archs": [NB201.to_string(a) for a in asked],
        "estimators": ["synflow"],
        "protocol": {"batch_size": 128},
        "truth": "cifar10_test",
    }
    # 4 asked x 128 images is within the bound; the 16 members scored are not
    fields = error_fields(client.post("/v1/studies", json={**body, "options": {"members": 4}}), 422)
    assert "16 architectures x 1 estimators x 128 images = 2,048 exceeds" in fields["options.members"]
