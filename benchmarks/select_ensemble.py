"""Choose a training-free ensemble's members on a selection split: every subset of the candidate estimators
(up to --max-size members), aggregated as Σ log(rank/N) over the split, ordered by Kendall tau against the
ground truth (fewer members first among equal taus).

    python benchmarks/select_ensemble.py --table benchmarks/results/scores/nb201_cpu_b128_cheap.jsonl \
        --table benchmarks/results/scores/nb201_cpu_b128_more.jsonl --space nb201 --truth cifar10_test \
        --exclude 1000:7 --candidates layers,zico,jacob_cov,meco,swap_reg,params,flops,az_expressivity,\
az_progressivity,az_trainability,relu_logdet,synflow
    python benchmarks/select_ensemble.py --table benchmarks/results/scores/nb101_cpu_b32_selection.jsonl \
        --space nb101 --truth val_accuracy
    python benchmarks/select_ensemble.py --table benchmarks/results/scores/nb301_cpu_b32.jsonl --space nb301 \
        --truth val_accuracy --exclude published:200:0 --min-size 2

Several ``--table`` files are joined by architecture (the ones every table holds, with the scores of
all). The split is their architectures minus those of each ``--exclude N:SEED`` sample (the cells the
ensemble is reported on), so the choice never sees them. ``ensemble:default``, ``ensemble:nb101`` and
``ensemble:nb301`` in the catalog are this script's first lines of the three commands above
(docs/concepts/estimators.md, "Ensembles"); ``--min-size 2`` leaves out single estimators, which NB301's
split ranked first (``az_expressivity``) and which are no ensemble.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys

from archscore.estimators.evaluation import published_sample, rank_records
from archscore.estimators.population import aggregate
from archscore.estimators.spaces import get_space
from archscore.estimators.truth import resolve_truth


def joined(tables: list[list[dict]]) -> list[dict]:
    """The records of the first table whose architecture every table holds, with the scores of all."""
    by_arch = [{r["arch"]: r for r in table} for table in tables[1:]]
    return [
        {**r, "scores": {k: v for other in [r, *(t[r["arch"]] for t in by_arch)] for k, v in other["scores"].items()}}
        for r in tables[0]
        if all(r["arch"] in t for t in by_arch)
    ]


def selection_split(records: list[dict], space: str, exclude: list[str]) -> list[dict]:
    """The records whose architecture is in none of the ``exclude`` samples (``N:SEED``, or
    ``published:N:SEED`` as ``scripts/score_table.py`` names them)."""
    sp = get_space(space)
    excluded = set()
    for spec in exclude:
        if spec.startswith("published:"):
            n, seed = (int(x) for x in spec.split(":")[1:])
            excluded.update(sp.to_string(a) for a in published_sample(space, n, seed))
        else:
            n, seed = (int(x) for x in spec.split(":"))
            excluded.update(sp.to_string(a) for a in sp.sample(n, seed))
    return [r for r in records if r["arch"] not in excluded]


def ranked_subsets(
    records: list[dict], space: str, truth: str, candidates: list[str], max_size: int, min_size: int = 1
):
    """(tau, members) for every subset of ``candidates`` of min_size..max_size members, best first."""
    rows = [r["scores"] for r in records]
    subsets = [c for k in range(min_size, max_size + 1) for c in itertools.combinations(candidates, k)]
    named = []
    for members in subsets:
        name = "+".join(members)
        for record, value in zip(records, aggregate(members, "log_rank", rows)):
            record["scores"][name] = value
        named.append((name, members))
    criteria = rank_records(records, space, [name for name, _ in named], resolve_truth(space, truth))
    scored = [(criteria[name]["kendall_tau"], members) for name, members in named]
    return sorted(scored, key=lambda s: (-(s[0] if s[0] is not None else -2.0), len(s[1]), s[1]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--table", required=True, action="append", help="JSON lines of scripts/score_table.py (repeatable)"
    )
    parser.add_argument("--space", default="nb201")
    parser.add_argument("--truth", required=True)
    parser.add_argument("--exclude", action="append", default=[], metavar="N:SEED")
    parser.add_argument("--candidates", help="comma-separated (default: every estimator the table holds)")
    parser.add_argument("--min-size", type=int, default=1, help="members at least (2: no single estimator)")
    parser.add_argument("--max-size", type=int, default=5)
    parser.add_argument("--top", type=int, default=10)
    args = parser.parse_args(argv)
    tables = []
    for path in args.table:
        with open(path) as f:
            tables.append([json.loads(line) for line in f if line.strip()])
    records = joined(tables)
    split = selection_split(records, args.space, args.exclude)
    candidates = args.candidates.split(",") if args.candidates else list(records[0]["scores"])
    print(f"selection split: {len(split)} of the tables' {len(records)} architectures (excluded: {args.exclude})")
    for tau, members in ranked_subsets(split, args.space, args.truth, candidates, args.max_size, args.min_size)[
        : args.top
    ]:
        print(f"{tau:.4f}  {', '.join(members)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
