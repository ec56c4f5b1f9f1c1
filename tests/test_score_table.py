"""scripts/score_table.py --report: the ranking-quality table of a written score table, over all its lines
or only those whose architecture has (or has not) published scores."""

from __future__ import annotations

import json

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
