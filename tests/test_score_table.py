"""scripts/score_table.py: --report, the ranking-quality table of a written score table, over all its lines
or only those whose architecture has (or has not) published scores; --init-seed, scoring under another
network seed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from helpers.scripts import load_script

import archscore


def test_report_splits_the_table_by_published_scores(tmp_path, capsys):
    space = archscore.get_space("nb201")
    published = {space.to_string(a) for a in space.published_archs()}
    sample = [space.to_string(a) for a in space.sample(40, seed=5)]
    inside = [a for a in sample if a in published][:4]
    outside = [a for a in sample if a not in published][:3]
    assert len(inside) == 4 and len(outside) == 3
    table = tmp_path / "scores.jsonl"
    records = archscore.score(inside + outside, space="nb201", estimators=["params", "flops"])
    table.write_text(
        "".join(
            json.dumps({"arch": r.arch, "canonical_key": r.canonical_key, "scores": r.scores}) + "\n" for r in records
        )
    )
    script = load_script("score_table")
    for flag, n in (("--published-only", 4), ("--unpublished-only", 3), (None, 7)):
        assert script.main(["--report", str(table), "--space", "nb201", *([flag] if flag else [])]) == 0
        out = capsys.readouterr().out
        assert out.startswith(f"{n} nb201 architectures") and f"| params | {n} |" in out, out


def test_also_adds_other_tables_scores_and_ensembles_rank_the_lines_holding_their_members(tmp_path, capsys):
    """A run of other estimators on some of the same cells reports beside the first table; a population
    estimator is ranked among the lines that hold all its members, the others get none."""
    from scipy.stats import rankdata

    from archscore.estimators.ranking import ranking_report

    space = archscore.get_space("nb201")
    cells = [space.to_string(a) for a in space.sample(6, seed=8)]
    records = archscore.score(cells, space="nb201", estimators=["params"])
    first, other = tmp_path / "first.jsonl", tmp_path / "other.jsonl"
    first.write_text(
        "".join(
            json.dumps({"arch": r.arch, "canonical_key": r.canonical_key, "scores": r.scores}) + "\n" for r in records
        )
    )
    members = {a: {"relu_logdet": float(i % 3), "az_expressivity": float(5 - i)} for i, a in enumerate(cells[:4])}
    other.write_text("".join(json.dumps({"arch": a, "scores": s}) + "\n" for a, s in members.items()))
    script = load_script("score_table")
    assert script.main(["--report", str(first), "--space", "nb201", "--also", str(other)]) == 0
    out = capsys.readouterr().out
    assert "| params | 6 |" in out and "| relu_logdet | 4 |" in out and "| ensemble:nb301 | 4 |" in out, out
    truth = space.ground_truth("cifar10_test")
    ensemble = sum(np.log(rankdata([members[a][m] for a in cells[:4]]) / 4) for m in ("relu_logdet", "az_expressivity"))
    ids = [r.canonical_key + r.arch for r in records[:4]]
    tau = ranking_report(list(ensemble), [truth[a] for a in cells[:4]], ids)["kendall_tau"]  # the 4 holding it
    assert f"| ensemble:nb301 | 4 | {tau:.3f} |" in out, out


def test_complexity_bias_leaves_out_estimators_only_some_lines_hold(tmp_path, capsys):
    """The bins partition every line: an estimator another table holds for a few of them is named, not ranked
    with its missing lines last."""
    space = archscore.get_space("nb201")
    cells = [space.to_string(a) for a in space.sample(12, seed=3)]
    records = archscore.score(cells, space="nb201", estimators=["params", "flops"])
    first, other = tmp_path / "first.jsonl", tmp_path / "other.jsonl"
    first.write_text(
        "".join(
            json.dumps({"arch": r.arch, "canonical_key": r.canonical_key, "scores": r.scores}) + "\n" for r in records
        )
    )
    other.write_text(
        "".join(json.dumps({"arch": a, "scores": {"synflow": float(i)}}) + "\n" for i, a in enumerate(cells[:5]))
    )
    script = load_script("score_table")
    args = ["--report", str(first), "--space", "nb201", "--also", str(other), "--complexity-bias", "2"]
    assert script.main(args) == 0
    out = capsys.readouterr().out
    assert "| params |" in out and "| flops |" in out, out
    assert "| synflow |" not in out and "Left out, scored on only some of these lines: synflow." in out, out


def test_init_seed_scores_under_the_protocols_seed(tmp_path):
    """--init-seed sets the protocol's seed: the table holds the scores the library gives under it, not
    those of the default seed."""
    out = tmp_path / "seed.jsonl"
    script = Path(__file__).resolve().parents[1] / "scripts" / "score_table.py"
    args = ["--space", "nb201", "--sample", "2:3", "-e", "synflow", "--batch-size", "8", "--processes", "1"]
    subprocess.run([sys.executable, str(script), *args, "--init-seed", "2020", "--out", str(out)], check=True)
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    archs = [line["arch"] for line in lines]
    assert len(archs) == 2
    seeded = archscore.score(archs, space="nb201", estimators=["synflow"], protocol={"batch_size": 8, "seed": 2020})
    default = archscore.score(archs, space="nb201", estimators=["synflow"], protocol={"batch_size": 8})
    for line, s, d in zip(lines, seeded, default):
        assert line["scores"]["synflow"] == s.scores["synflow"] != d.scores["synflow"]
