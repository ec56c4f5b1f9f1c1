"""The command line on NAS-Bench-101 and NAS-Bench-301: score from files of any encoding (one output
line per input line, in input order), exact params/flops over the whole shipped tables, evaluate
against the published scores, and usage errors."""

from __future__ import annotations

import csv
import gzip
import io
import json
from importlib import resources

import pytest
from helpers.cli import run

from archscore.estimators.spaces import get_space

NB101, NB301 = get_space("nb101"), get_space("nb301")


def _table(name: str) -> list[dict]:
    raw = (resources.files("archscore.estimators.data") / name).read_bytes()
    return list(csv.DictReader(gzip.decompress(raw).decode().splitlines()))


def _nb101_line(row: dict) -> str:
    return json.dumps({"matrix": json.loads(row["matrix"]), "ops": json.loads(row["ops"])})


@pytest.mark.parametrize(
    "space, table, line",
    [
        ("nb101", "nb101_suitezero_cifar10.csv.gz", _nb101_line),
        ("nb301", "nb301_suitezero_cifar10.csv.gz", lambda r: r["genotype"]),
    ],
)
def test_params_and_flops_equal_the_published_columns_on_the_whole_table(tmp_path, space, table, line):
    rows = _table(table)
    source = tmp_path / "archs.txt"
    source.write_text("\n".join(line(r) for r in rows) + "\n")
    out = tmp_path / "scores.jsonl"
    result = run("score", "--space", space, "-e", "params,flops", "-f", str(source), "--out", str(out), "--jobs", "1")
    assert result.exit_code == 0, result.output
    records = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(records) == len(rows)  # one line per input line, duplicates of a module included
    sp = get_space(space)
    for row, record in zip(rows, records):
        assert record["canonical_key"] == sp.canonical_key(sp.parse(line(row)))
        assert record["scores"]["params"] == pytest.approx(float(row["params"]), abs=5e-7)
        assert record["scores"]["flops"] == pytest.approx(float(row["flops"]), abs=5e-7)


@pytest.mark.slow
def test_score_keeps_input_order_across_encodings(tmp_path):
    cells = NB101.published_archs()[:3]
    lines = [
        "# a comment line and a blank line are skipped",
        "",
        NB101.canonical_key(cells[2]),  # module hash of a table cell
        json.dumps(NB101.to_json(cells[0])),
        NB101.to_string(cells[1]),
    ]
    result = run("score", "--space", "nb101", "-e", "params,relu", "--batch-size", "4", stdin="\n".join(lines) + "\n")
    assert result.exit_code == 0, result.output
    records = [json.loads(x) for x in result.stdout.splitlines() if x.startswith("{")]
    assert [r["arch"] for r in records] == [NB101.to_string(c) for c in (cells[2], cells[0], cells[1])]
    assert all(r["space"] == "nb101" and r["scores"]["relu"] > 0 for r in records)


@pytest.mark.slow
def test_score_nb301_darts_strings_as_csv(tmp_path):
    genotypes = NB301.published_archs()[:2]
    source = tmp_path / "genotypes.txt"
    source.write_text("\n".join(NB301.to_string(g) for g in genotypes) + "\n")
    out = tmp_path / "scores.csv"
    result = run(
        "score", "--space", "nb301", "-e", "params,synflow", "-f", str(source), "--format", "csv", "--out", str(out)
    )
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert [r["arch"] for r in rows] == [NB301.to_string(g) for g in genotypes]
    assert all(float(r["synflow"]) > 0 for r in rows)


@pytest.mark.parametrize("space", ["nb101", "nb301"])
def test_evaluate_from_published_compares_with_the_published_scores(tmp_path, space):
    out = tmp_path / "report.json"
    result = run(
        "evaluate",
        "--space",
        space,
        "--sample",
        "25",
        "--seed",
        "1",
        "--from-published",
        "-e",
        "params,flops",
        "--out",
        str(out),
        "--jobs",
        "1",
    )
    assert result.exit_code == 0, result.output
    assert "published τ" in result.stdout and "val_accuracy" in result.stdout
    report = json.loads(out.read_text())
    assert report["n"] == 25 and report["truth"]["column"] == "val_accuracy"
    for name in ("params", "flops"):  # exact estimators rank the cells as the published columns do
        assert report["criteria"][name]["kendall_tau"] == pytest.approx(
            report["published_criteria"][name]["kendall_tau"]
        )


@pytest.mark.parametrize(
    "args, stdin, needle",
    [
        (
            ("score", "--space", "nb101", "-e", "params"),
            '{"matrix": [[0, 1], [1, 0]], "ops": ["input", "output"]}\n',
            "stdin line 1: matrix[1][0]",
        ),
        (
            ("score", "--space", "nb101", "-e", "params"),
            "0123456789abcdef0123456789abcdef\n",
            "not in the shipped table",
        ),
        (("score", "--space", "nb301", "-e", "params"), "Genotype(normal=[])\n", "stdin line 1"),
        (("score", "--space", "nb101", "--sample", "3", "--deiso", "-e", "params"), None, "--deiso does not apply"),
        (("evaluate", "--space", "nb301", "--sample", "3", "--truth", "cifar10_test"), None, "cifar10_test"),
    ],
)
def test_usage_errors_exit_2_with_a_reason(args, stdin, needle):
    result = run(*args, stdin=stdin)
    assert result.exit_code == 2, result.output
    assert needle in result.stderr
