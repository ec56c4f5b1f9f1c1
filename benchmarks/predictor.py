"""How well a few-shot predictor ranks held-out architectures, by training-set size: Kendall tau (and
Spearman) on the rest of a fixed pool, mean and standard deviation over seeds.

    python benchmarks/predictor.py --space nb201 --scores benchmarks/results/scores/nb201_cpu_b128_cheap.jsonl \
        --scores benchmarks/results/scores/nb201_cpu_b128_more.jsonl
    python benchmarks/predictor.py --space nb101 --published -e params,flops

The pool is the architectures of a score table (``scripts/score_table.py``'s lines: the zero-shot scores
are read from it, nothing is scored; several tables are joined by architecture, as ``select_ensemble.py``
joins them) or, with ``--published``, the cells with published labels, whose
params and flops the space's cost model gives; ``--published-proxies`` reads those cells' published
zero-cost scores (NAS-Bench-Suite-Zero's, the features of NASLib's XGBoost predictor) instead.

For each N and seed, N architectures of the pool are drawn with that seed, the predictor
(archscore.estimators.predictor.fit, as the library, the command line and the service fit it) is fitted to
their labels, and the others are ranked. Ties and missing scores as in the ranking criteria
(archscore.estimators.ranking).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time

from select_ensemble import joined  # benchmarks/, the script's folder

from archscore.estimators.predictor import DEFAULT_ESTIMATORS, fit, prior_members
from archscore.estimators.protocol import Protocol
from archscore.estimators.ranking import ranking_report
from archscore.estimators.spaces import get_space
from archscore.estimators.truth import resolve_truth

SIZES = (10, 25, 50, 100, 200, 400)


def _pool(space, args) -> tuple[list, list[dict]]:
    if args.published_proxies:  # NAS-Bench-Suite-Zero's scores, as NASLib's predictors read them
        proxies = space.published_proxies()
        args.estimators = list(proxies)
        archs = space.published_archs()
        return archs, [{n: proxies[n].get(space.to_string(a)) for n in proxies} for a in archs]
    if args.published:
        import archscore

        archs = space.published_archs()
        scores = archscore.score([space.to_json(a) for a in archs], space.name, args.estimators)
        return archs, [dict(s.scores) for s in scores]
    tables = []
    for path in args.scores:
        with open(path) as f:
            tables.append([json.loads(line) for line in f if line.strip()])
    records = joined(tables)
    return [space.parse(r["arch"]) for r in records], [r["scores"] for r in records]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--space", default="nb201")
    parser.add_argument("--truth", help="ground-truth column (default: the space's first)")
    pool = parser.add_mutually_exclusive_group(required=True)
    pool.add_argument(
        "--scores", action="append", help="a score table (JSON lines with arch and scores); several are joined"
    )
    pool.add_argument("--published", action="store_true", help="the cells with published labels")
    pool.add_argument(
        "--published-proxies",
        action="store_true",
        help="the cells with published labels, their published zero-cost scores as the features",
    )
    parser.add_argument("-e", "--estimators", default=",".join(DEFAULT_ESTIMATORS))
    parser.add_argument("--no-encoding", action="store_true")
    parser.add_argument(
        "--prior", default="auto", help="an ensemble whose members are the prior; auto: the space's; none: no prior"
    )
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)))
    args = parser.parse_args()
    args.estimators = [n for n in args.estimators.split(",") if n]
    space = get_space(args.space)
    prior = () if args.published_proxies else prior_members(space.name, args.prior, args.estimators)
    args.estimators += [n for n in prior if n not in args.estimators]
    truth = resolve_truth(space.name, args.truth or space.ground_truth_columns[0])
    archs, rows = _pool(space, args)
    labelled = [(a, r, truth.get(a)) for a, r in zip(archs, rows) if truth.get(a) is not None]
    missing = [n for n in args.estimators if not all(n in r for _, r, _ in labelled)]
    if missing:
        raise SystemExit(f"the pool lacks scores of {', '.join(missing)}")
    features = ", ".join(args.estimators) + ("" if args.no_encoding else f" + {space.name}'s encoding features")
    features += f"; prior: {', '.join(prior) or 'none'}"
    print(f"{space.name}: pool of {len(labelled)} architectures with {truth.column}; features: {features}")
    print(f"Kendall tau and Spearman on the rest of the pool, mean ± std over {args.seeds} seeds\n")
    print("| N | Kendall τ | Spearman | fit (s) |\n|---|---|---|---|")
    for n in (int(s) for s in args.sizes.split(",")):
        if n >= len(labelled):
            continue
        taus, rhos, seconds = [], [], []
        for seed in range(args.seeds):
            order = list(range(len(labelled)))
            random.Random(seed).shuffle(order)
            train, test = [labelled[i] for i in order[:n]], [labelled[i] for i in order[n:]]
            start = time.perf_counter()
            model = fit(
                space,
                [a for a, _, _ in train],
                [y for _, _, y in train],
                [r for _, r, _ in train],
                estimators=args.estimators,
                truth=truth.column,
                protocol=Protocol().model_dump(mode="json"),
                seed=seed,
                encoding=not args.no_encoding,
                prior=prior,
            )
            seconds.append(time.perf_counter() - start)
            predicted = model.predict(space, [a for a, _, _ in test], [r for _, r, _ in test])
            report = ranking_report(predicted, [y for _, _, y in test])
            taus.append(report["kendall_tau"])
            rhos.append(report["spearman"])
        print(
            f"| {n} | {statistics.mean(taus):.3f} ± {statistics.stdev(taus):.3f} "
            f"| {statistics.mean(rhos):.3f} ± {statistics.stdev(rhos):.3f} | {statistics.median(seconds):.2f} |"
        )


if __name__ == "__main__":
    main()
