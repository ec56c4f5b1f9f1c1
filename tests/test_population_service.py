"""Population estimators through the service (a real Celery worker on a real Redis), the library and the
command line: the aggregate ranks the request's architectures from the members' cached scores, adding an
architecture scores only that one, and the rankings, the dashboard's points and the library agree."""

from __future__ import annotations

import json
import math

import pytest
from helpers.cli import run
from helpers.scoring import cells, phash, request
from test_population import average_ranks

import archscore
from archscore.contract import store
from archscore.estimators.catalog import ESTIMATORS, POPULATION, ZERO_SHOT, scored_estimators
from archscore.estimators.protocol import Protocol

pytestmark = pytest.mark.usefixtures("celery_worker")
SEED = 9101
NAME = "te_nas"
MEMBERS = POPULATION[NAME].members  # ntk_cond, linear_regions: summed ranks


def rank_sums(rows: list[dict]) -> list[float]:
    """TE-NAS's aggregate: a member's missing value ranks lowest."""
    ranks = [average_ranks([-math.inf if row[m] is None else row[m] for row in rows]) for m in MEMBERS]
    return [sum(r[i] for r in ranks) for i in range(len(rows))]


def test_the_request_is_the_population_and_adding_one_scores_only_it(client, r):
    archs = cells(6, seed=91)
    first = client.post("/v1/scores", params={"wait": 240}, json=request(archs[:5], [NAME, *MEMBERS], SEED)).json()
    assert first["status"] == "done", first
    rows = [result["scores"] for result in first["results"]]
    assert all(row[m] is not None for row in rows for m in MEMBERS), rows
    assert [row[NAME] for row in rows] == pytest.approx(rank_sums(rows))
    for member in MEMBERS:  # the members are cached as any estimator; the aggregate is not stored
        assert r.hlen(store.score_key("nb201", phash(SEED), member)) == 5
    assert not list(r.scan_iter(f"{store.PREFIX}:score:nb201:{phash(SEED)}:{NAME}@*"))

    second = client.post("/v1/scores", params={"wait": 240}, json=request(archs, [NAME], SEED)).json()
    assert second["status"] == "done" and second["cached"] == 5, second  # only the new one was scored
    assert list(second["results"][0]["scores"]) == [NAME]  # members asked for only are shown
    members_now = [*rows, None]
    for member in MEMBERS:
        values = r.hmget(
            store.score_key("nb201", phash(SEED), member), [res["canonical_key"] for res in second["results"]]
        )
        for i, raw in enumerate(values):
            members_now[i] = {**(members_now[i] or {}), member: store.decode_cell(raw).value}
    assert [res["scores"][NAME] for res in second["results"]] == pytest.approx(rank_sums(members_now))
    assert [res["scores"][m] for res in first["results"] for m in MEMBERS] == [
        row[m] for row in members_now[:5] for m in MEMBERS
    ]  # the first five's members were not scored again

    # the rankings and the dashboard's points rank every architecture scored under the protocol
    report = client.get("/v1/rankings/nb201", params={"protocol_hash": phash(SEED)}).json()["rankings"][0]
    assert report["estimators"][NAME]["n"] == 6 and -1 <= report["estimators"][NAME]["kendall_tau"] <= 1
    points = client.get(
        "/v1/rankings/nb201/points",
        params={"protocol_hash": phash(SEED), "truth": "cifar10_test", "estimator": NAME},
    ).json()["points"]
    by_arch = {p[2]: p[0] for p in points}
    assert [by_arch[a] for a in archs] == pytest.approx([res["scores"][NAME] for res in second["results"]])


def test_an_architecture_a_member_cannot_score_ranks_lowest_in_it(client):
    dead = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"  # no path from input to output
    archs = [dead, *cells(3, seed=92)]
    job = client.post("/v1/scores", params={"wait": 240}, json=request(archs, [NAME, *MEMBERS], SEED + 1)).json()
    assert job["status"] == "done", job
    rows = [res["scores"] for res in job["results"]]
    assert [row[NAME] for row in rows] == pytest.approx(rank_sums(rows))
    assert rows[0][NAME] == min(row[NAME] for row in rows)


def test_the_library_and_the_command_line_rank_the_call(tmp_path):
    archs = cells(4, seed=93)
    protocol = Protocol(batch_size=16, num_batches=1, seed=SEED + 2)
    scored = archscore.score(archs, space="nb201", estimators=[NAME, *MEMBERS], protocol=protocol)
    rows = [s.scores for s in scored]
    assert [row[NAME] for row in rows] == pytest.approx(rank_sums(rows))

    listed = run("estimators", "--json")
    entry = next(e for e in json.loads(listed.stdout) if e["name"] == NAME)
    assert entry["kind"] == "population" and tuple(entry["members"]) == MEMBERS
    out = tmp_path / "scores.jsonl"
    args = ["--space", "nb201", "-e", NAME, "--batch-size", "16", "--init-seed", str(SEED + 2), "-f", "-"]
    result = run("score", *args, "-o", str(out), stdin="\n".join(archs))
    assert result.exit_code == 0, result.stderr
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["scores"][NAME] for line in lines] == pytest.approx([row[NAME] for row in rows])


def test_catalog_population_estimators_rank_zero_shot_members():
    assert POPULATION, "the catalog has population estimators"
    for name, info in POPULATION.items():
        assert info.kind == "population" and ESTIMATORS[name] is info
        assert info.members and all(m in ZERO_SHOT for m in info.members)
        assert info.aggregation in ("rank_sum", "log_rank")
    assert scored_estimators(["params", "te_nas", "ntk_cond"]) == ["params", "ntk_cond", "linear_regions"]
