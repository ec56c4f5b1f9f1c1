"""The HTTP service on every search space: scoring, canonical keys, ground truth (built-in and
uploaded), rankings and bad encodings, against a real Redis and a real Celery worker.

Parametrised over every registered space, so a new space is covered by registering it: spaces with
published architectures score those, the others the first of their enumeration (the smallest
networks); spaces without built-in ground truth get an uploaded table first. Kept cheap: batch 4,
cheap estimators.
"""

from __future__ import annotations

import csv
import io
import itertools
import json

import pytest
from helpers.http import error_fields

from archscore.estimators.protocol import Protocol
from archscore.estimators.ranking import ranking_report
from archscore.estimators.spaces import get_space, list_spaces

pytestmark = pytest.mark.usefixtures("celery_worker")

CHEAP = ["params", "flops", "synflow", "relu"]
SPACES = [name for name in list_spaces() if get_space(name).samples]  # onnx: tests/test_onnx_space.py
# An encoding each space refuses, and words its reason must contain.
BAD = {
    "nb201": ("|nor_conv_3x3~0|+|nor_conv_3x3~0|bogus~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|", "unknown op"),
    "nb101": (
        {"matrix": [[0, 1, 0], [0, 0, 0], [0, 0, 0]], "ops": ["input", "conv3x3-bn-relu", "output"]},
        "not connected",
    ),
    "nb301": (
        {
            "normal": [["sep_conv_3x3", 0]] * 8,
            "normal_concat": [2, 3, 4, 5],
            "reduce": [["sep_conv_3x3", 0]] * 8,
            "reduce_concat": [2, 3, 4, 5],
        },
        "distinct",
    ),
    "nds_resnet": ({"depths": [1, 5, 2], "widths": [16, 16, 16]}, "stage 2 depth 5 is not allowed"),
    "nds_resnexta": ("d1-1-1_w16-16-16_b1-1-1_g1-1-8", "stage 3 group 8 is not allowed"),
}


def archs_of(space, count: int) -> list:
    """Architectures to score: the published ones, else the first of the enumeration."""
    if space.has("published_proxies"):
        return space.published_archs()[:count]
    return list(itertools.islice(space.enumerate(), count))


def truth_of(client, space) -> tuple[str, dict[str, float]]:
    """A ground-truth column and its values: the first built-in one, else a table uploaded here."""
    if space.has("ground_truth"):
        column = space.ground_truth_columns[0]
        return column, space.ground_truth(column)
    values = {space.truth_key(a): 90.0 - i for i, a in enumerate(archs_of(space, 8))}
    table = {space.to_string(a): values[space.truth_key(a)] for a in archs_of(space, 8)}
    resp = client.put(
        f"/v1/truth/{space.name}/bench", content=json.dumps(table), headers={"content-type": "text/plain"}
    )
    assert resp.status_code == 200, resp.text
    return "bench", values


def body(space: str, archs: list, seed: int, estimators=CHEAP, **extra) -> dict:
    return {
        "space": space,
        "archs": archs,
        "estimators": estimators,
        "protocol": {"batch_size": 4, "num_batches": 1, "seed": seed},
        **extra,
    }


@pytest.fixture(params=SPACES)
def space(request):
    return get_space(request.param)


def test_every_space_is_covered():
    assert {"nb101", "nb201", "nb301", "nds_resnet", "nds_resnexta"} <= set(SPACES) and set(SPACES) <= set(BAD)


def test_scores_ground_truth_and_rankings(client, space):
    archs = archs_of(space, 3)
    column, truth = truth_of(client, space)
    # three encoding forms: the space's JSON form, its string form, and the JSON form as text
    encodings = [space.to_json(archs[0]), space.to_string(archs[1]), json.dumps(space.to_json(archs[2]))]
    extra = {} if space.has("ground_truth") else {"truth": column}
    resp = client.post("/v1/scores?wait=120", json=body(space.name, encodings, seed=301, **extra))
    assert resp.status_code == 200, resp.text
    job = resp.json()
    assert job["status"] == "done" and job["space"] == space.name
    assert job["truth"] == column  # built-in: omitted means the space's first column
    for arch, res in zip(archs, job["results"]):
        assert res["arch"] == space.to_string(arch) and res["canonical_key"] == space.canonical_key(arch)
        assert res["ground_truth"] == truth[space.truth_key(arch)]
        params, flops = space.cost(arch)
        assert res["scores"]["params"] == pytest.approx(params / 1e6)
        assert res["scores"]["flops"] == pytest.approx(flops / 1e6)
        assert res["error"] is None and all(isinstance(res["scores"][n], float) for n in CHEAP), res
    stats = job["rankings"]
    assert stats["n"] == 3 and set(stats["estimators"]) == set(CHEAP)
    expected = ranking_report(
        [r["scores"]["synflow"] for r in job["results"]], [r["ground_truth"] for r in job["results"]]
    )
    assert stats["estimators"]["synflow"]["kendall_tau"] == pytest.approx(expected["kendall_tau"])

    listed = client.get(f"/v1/rankings/{space.name}", params={"truth": column}).json()
    phash = Protocol(batch_size=4, num_batches=1, seed=301).hash()
    entry = next(x for x in listed["rankings"] if x["protocol_hash"] == phash)
    assert listed["truth"] == column and entry["n"] == 3


def test_equivalent_encodings_are_scored_once(client, r, space):
    arch = archs_of(space, 4)[3]
    twin = space.parse(space.to_json(arch))
    job = client.post(
        "/v1/scores?wait=120",
        json=body(space.name, [space.to_json(arch), space.to_string(twin)], seed=302, estimators=["synflow"]),
    ).json()
    assert job["status"] == "done" and job["progress"]["total"] == 1
    assert job["results"][0]["scores"] == job["results"][1]["scores"]


def test_bad_encoding_is_422_naming_the_index_and_rule(client, r, space):
    bad, needle = BAD[space.name]
    good = space.to_json(archs_of(space, 1)[0])
    fields = error_fields(client.post("/v1/scores", json=body(space.name, [good, bad], seed=303)), 422)
    assert set(fields) == {"archs[1]"} and needle in fields["archs[1]"]
    text = bad if isinstance(bad, str) else json.dumps(bad)
    fields = error_fields(client.get(f"/v1/spaces/{space.name}/canonical", params={"arch": text}), 422)
    assert needle in fields["arch"]


def test_canonical_route_accepts_the_json_text_form(client, space):
    arch = archs_of(space, 2)[1]
    resp = client.get(f"/v1/spaces/{space.name}/canonical", params={"arch": json.dumps(space.to_json(arch))})
    assert resp.status_code == 200, resp.text
    assert resp.json()["canonical_key"] == space.canonical_key(arch)
    assert resp.json()["arch"] == space.to_string(arch)


def test_uploaded_truth_in_csv_with_json_cells(client, space):
    a, b, c = archs_of(space, 7)[4:7]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["arch", "acc"])
    writer.writerow([json.dumps(space.to_json(a)), 91.5])
    writer.writerow([space.to_string(b), 42.25])
    resp = client.put(f"/v1/truth/{space.name}/mine", content=out.getvalue(), headers={"content-type": "text/plain"})
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"space": space.name, "name": "mine", "rows": 2, "column": "acc", "skipped": []}
    job = client.post(
        "/v1/scores?wait=120",
        json=body(space.name, [space.to_json(x) for x in (a, b, c)], seed=304, estimators=["params"], truth="mine"),
    ).json()
    assert [x["ground_truth"] for x in job["results"]] == [91.5, 42.25, None]
    stats = client.get(f"/v1/rankings/{space.name}", params={"truth": "mine"}).json()
    entry = next(x for x in stats["rankings"] if x["protocol_hash"] == job["protocol_hash"])
    assert entry["n"] == 2 and "params" in entry["estimators"]


def test_ground_truth_in_the_nds_record_format_drives_the_rankings(client):
    from helpers.nds_records import nds_records

    resnet, resnexta = get_space("nds_resnet"), get_space("nds_resnexta")
    archs = archs_of(resnet, 5)
    records = nds_records(resnet, archs, seed=7) + nds_records(resnexta, archs_of(resnexta, 2), seed=8)
    resp = client.put(
        "/v1/truth/nds_resnet/nds_last?column=test_ep_top1",
        content=json.dumps(records),
        headers={"content-type": "text/plain"},
    )
    assert resp.status_code == 200, resp.text
    answer = resp.json()
    assert answer["rows"] == 5 and answer["column"] == "test_ep_top1"
    assert answer["skipped"] == [
        {
            "count": 2,
            "reason": "block_type 'res_bottleneck_block' is not nds_resnet's "
            "'res_basic_block' (that is nds_resnexta's block type)",
        }
    ]
    job = client.post(
        "/v1/scores?wait=120",
        json=body(
            "nds_resnet",
            [resnet.to_string(a) for a in archs],
            seed=305,
            estimators=["params", "synflow"],
            truth="nds_last",
        ),
    ).json()
    assert job["status"] == "done", job
    expected = [100 - r["test_ep_top1"][-1] for r in records[:5]]
    assert [x["ground_truth"] for x in job["results"]] == pytest.approx(expected)
    listed = client.get("/v1/rankings/nds_resnet", params={"truth": "nds_last", "protocol_hash": job["protocol_hash"]})
    entry = listed.json()["rankings"][0]
    params = [x["scores"]["params"] for x in job["results"]]
    assert entry["n"] == 5 and entry["estimators"]["params"]["kendall_tau"] == pytest.approx(
        ranking_report(params, expected)["kendall_tau"]
    )

    fields = error_fields(
        client.put(
            "/v1/truth/nds_resnet/bad?column=max_test_top1",
            content=json.dumps(records),
            headers={"content-type": "text/plain"},
        ),
        422,
    )
    assert "use min_test_top1" in fields["body"]
