"""The predictor on the command line's split, with features read from score tables: fitted on
``sample(TRAIN, SEED)`` of the space, tested on ``sample(TEST, TEST_SEED)`` less the isomorphism classes
of the training set, as ``archscore predictor fit --train TRAIN --seed SEED`` then ``archscore predictor
eval DIR --test TEST --seed TEST_SEED`` split them. It lets features the command line does not score yet
(such as a supernet's one-shot scores) be measured on that split:

    python benchmarks/predictor_split.py \
        --scores benchmarks/results/scores/nb201_cpu_b128_predictor_default.jsonl \
        --scores benchmarks/results/scores/nb201_cpu_oneshot_deiso_n1.jsonl \
        -e params,flops,layers,zico,jacob_cov,meco,swap_reg,az_expressivity,az_trainability,synflow,oneshot_acc

A table line holding ``canonical_key`` gives the scores of that isomorphism class (as ``archscore score
--out`` writes them); a line without it gives the scores of the architecture it names (as
``archscore supernet eval --out`` scores each cell). ``params`` and ``flops`` are computed, not read.
"""

from __future__ import annotations

import argparse
import json

import archscore
from archscore.estimators.predictor import DEFAULT_ESTIMATORS, fit, prior_members
from archscore.estimators.protocol import PER_ARCHITECTURE, Protocol
from archscore.estimators.ranking import ranking_report
from archscore.estimators.spaces import get_space
from archscore.estimators.truth import resolve_truth


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--space", default="nb201")
    parser.add_argument("--truth", help="ground-truth column (default: the space's first)")
    parser.add_argument("--scores", action="append", required=True, help="a score table (JSON lines)")
    parser.add_argument("-e", "--estimators", default=",".join(DEFAULT_ESTIMATORS))
    parser.add_argument("--prior", default="auto")
    parser.add_argument("--train", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--test", type=int, default=1000)
    parser.add_argument("--test-seed", type=int, default=1)
    args = parser.parse_args()
    space = get_space(args.space)
    truth = resolve_truth(space.name, args.truth or space.ground_truth_columns[0])
    names = [n for n in args.estimators.split(",") if n]
    prior = prior_members(space.name, args.prior, names)
    names += [n for n in prior if n not in names]

    by_class: dict[str, dict] = {}
    by_arch: dict[str, dict] = {}
    for path in args.scores:
        with open(path) as f:
            for line in filter(str.strip, f):
                record = json.loads(line)
                if "canonical_key" in record:
                    by_class.setdefault(record["canonical_key"], {}).update(record["scores"])
                else:
                    by_arch.setdefault(record["arch"], {}).update(record["scores"])

    train = [a for a in space.sample(args.train, seed=args.seed) if truth.get(a) is not None]
    trained = {space.canonical_key(a) for a in train}
    test = [
        a
        for a in space.sample(args.test, seed=args.test_seed)
        if space.canonical_key(a) not in trained and truth.get(a) is not None
    ]
    computed = [n for n in names if n in PER_ARCHITECTURE]

    def features(archs):
        rows = [{**by_class.get(space.canonical_key(a), {}), **by_arch.get(space.to_string(a), {})} for a in archs]
        if computed:
            for row, record in zip(rows, archscore.score([space.to_json(a) for a in archs], space.name, computed)):
                row.update(record.scores)
        missing = sorted({n for row in rows for n in names if n not in row})
        if missing:
            raise SystemExit(f"the tables lack scores of {', '.join(missing)}")
        return rows

    model = fit(
        space,
        train,
        [truth.get(a) for a in train],
        features(train),
        estimators=names,
        truth=truth.column,
        protocol=Protocol().model_dump(mode="json"),
        seed=args.seed,
        prior=prior,
    )
    report = ranking_report(model.predict(space, test, features(test)), [truth.get(a) for a in test])
    print(
        f"{space.name}: trained on {len(train)} (seed {args.seed}), tested on {len(test)} "
        f"(sample {args.test}, seed {args.test_seed}, training classes left out) vs {truth.column}\n"
        f"features: {', '.join(names)} + encoding; prior: {', '.join(prior) or 'none'}\n"
        f"Kendall tau {report['kendall_tau']:.4f}, Spearman {report['spearman']:.4f}"
    )


if __name__ == "__main__":
    main()
