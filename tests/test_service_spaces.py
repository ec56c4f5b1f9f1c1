"""The HTTP service on every search space: scoring, canonical keys, ground truth (built-in and
uploaded), rankings and bad encodings, against a real Redis and a real Celery worker.

Parametrised over the spaces with built-in ground truth and published architectures, so a new space
with a shipped table is covered by registering it. Kept cheap: batch 4, cheap estimators.
"""

from __future__ import annotations

import csv
import io
import json

import pytest

from estimators.protocol import Protocol
from estimators.ranking import ranking_report
from estimators.spaces import get_space, list_spaces
from test_service import error_fields

pytestmark = pytest.mark.usefixtures("celery_worker")

CHEAP = ["params", "flops", "synflow", "relu"]
SPACES = [n for n in list_spaces() if get_space(n).has("ground_truth") and get_space(n).has("published_proxies")]
# An encoding each space refuses, and words its reason must contain.
BAD = {
    "nb201": ("|nor_conv_3x3~0|+|nor_conv_3x3~0|bogus~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|", "unknown op"),
    "nb101": ({"matrix": [[0, 1, 0], [0, 0, 0], [0, 0, 0]], "ops": ["input", "conv3x3-bn-relu", "output"]},
              "not connected"),
    "nb301": ({"normal": [["sep_conv_3x3", 0]] * 8, "normal_concat": [2, 3, 4, 5],
               "reduce": [["sep_conv_3x3", 0]] * 8, "reduce_concat": [2, 3, 4, 5]}, "distinct"),
}


def body(space: str, archs: list, seed: int, estimators=CHEAP, **extra) -> dict:
    return {"space": space, "archs": archs, "estimators": estimators,
            "protocol": {"batch_size": 4, "num_batches": 1, "seed": seed}, **extra}


@pytest.fixture(params=SPACES)
def space(request):
    return get_space(request.param)


def test_every_space_with_a_table_is_covered():
    assert {"nb101", "nb201", "nb301"} <= set(SPACES) and set(SPACES) <= set(BAD)


def test_scores_ground_truth_and_rankings(client, space):
    archs = space.published_archs()[:3]
    # three encoding forms: the space's JSON form, its string form, and the JSON form as text
    encodings = [space.to_json(archs[0]), space.to_string(archs[1]), json.dumps(space.to_json(archs[2]))]
    resp = client.post("/v1/scores?wait=120", json=body(space.name, encodings, seed=301))
    assert resp.status_code == 200, resp.text
    job = resp.json()
    assert job["status"] == "done" and job["space"] == space.name
    truth = space.ground_truth(space.ground_truth_columns[0])
    assert job["truth"] == space.ground_truth_columns[0]  # omitted: the space's first column
    for arch, res in zip(archs, job["results"]):
        assert res["arch"] == space.to_string(arch) and res["canonical_key"] == space.canonical_key(arch)
        assert res["ground_truth"] == truth[space.truth_key(arch)]
        params, flops = space.cost(arch)
        assert res["scores"]["params"] == pytest.approx(params / 1e6)
        assert res["scores"]["flops"] == pytest.approx(flops / 1e6)
        assert res["error"] is None and all(isinstance(res["scores"][n], float) for n in CHEAP), res
    stats = job["rankings"]
    assert stats["n"] == 3 and set(stats["estimators"]) == set(CHEAP)
    expected = ranking_report([r["scores"]["synflow"] for r in job["results"]], [r["ground_truth"] for r in job["results"]])
    assert stats["estimators"]["synflow"]["kendall_tau"] == pytest.approx(expected["kendall_tau"])

    listed = client.get(f"/v1/rankings/{space.name}").json()
    phash = Protocol(batch_size=4, num_batches=1, seed=301).hash()
    entry = next(x for x in listed["rankings"] if x["protocol_hash"] == phash)
    assert listed["truth"] == space.ground_truth_columns[0] and entry["n"] == 3


def test_equivalent_encodings_are_scored_once(client, r, space):
    arch = space.published_archs()[3]
    twin = space.parse(space.to_json(arch))
    job = client.post("/v1/scores?wait=120", json=body(space.name, [space.to_json(arch), space.to_string(twin)],
                                                       seed=302, estimators=["synflow"])).json()
    assert job["status"] == "done" and job["progress"]["total"] == 1
    assert job["results"][0]["scores"] == job["results"][1]["scores"]


def test_bad_encoding_is_422_naming_the_index_and_rule(client, r, space):
    bad, needle = BAD[space.name]
    good = space.to_json(space.published_archs()[0])
    fields = error_fields(client.post("/v1/scores", json=body(space.name, [good, bad], seed=303)), 422)
    assert set(fields) == {"archs[1]"} and needle in fields["archs[1]"]
    text = bad if isinstance(bad, str) else json.dumps(bad)
    fields = error_fields(client.get(f"/v1/spaces/{space.name}/canonical", params={"arch": text}), 422)
    assert needle in fields["arch"]


def test_canonical_route_accepts_the_json_text_form(client, space):
    arch = space.published_archs()[1]
    resp = client.get(f"/v1/spaces/{space.name}/canonical", params={"arch": json.dumps(space.to_json(arch))})
    assert resp.status_code == 200, resp.text
    assert resp.json()["canonical_key"] == space.canonical_key(arch)
    assert resp.json()["arch"] == space.to_string(arch)


def test_uploaded_truth_in_csv_with_json_cells(client, space):
    a, b, c = space.published_archs()[4:7]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["arch", "acc"])
    writer.writerow([json.dumps(space.to_json(a)), 91.5])
    writer.writerow([space.to_string(b), 42.25])
    resp = client.put(f"/v1/truth/{space.name}/mine", content=out.getvalue(), headers={"content-type": "text/plain"})
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"space": space.name, "name": "mine", "rows": 2}
    job = client.post("/v1/scores?wait=120", json=body(space.name, [space.to_json(x) for x in (a, b, c)], seed=304,
                                                       estimators=["params"], truth="mine")).json()
    assert [x["ground_truth"] for x in job["results"]] == [91.5, 42.25, None]
    stats = client.get(f"/v1/rankings/{space.name}", params={"truth": "mine"}).json()
    entry = next(x for x in stats["rankings"] if x["protocol_hash"] == job["protocol_hash"])
    assert entry["n"] == 2 and "params" in entry["estimators"]
