"""Architecture search against a running archscore service: how close to the best cell a loop gets, and
how fast, when its fitness is the true accuracy, the built-in ensemble, a few-shot predictor refitted as
labels arrive, or the parameter count.

    python examples/search/search.py --url http://127.0.0.1:8000 --space nb201 --budget 100 --seeds 10 \
        --out nb201.jsonl
    python examples/search/plot.py nb201.jsonl --out nb201.png

Algorithms (``--algorithms``):
  random     ``budget`` architectures drawn uniformly from the pool;
  evolution  regularised evolution (Real et al., 2019): a population of ``--population`` architectures,
             each step the fittest of ``--sample`` random members is mutated, the child joins and the oldest
             member leaves.
Fitness (``--strategies``), each query being one architecture the loop evaluates:
  oracle     its ground truth, as if it were trained: every query labels one architecture (the upper bound);
  ensemble   the space's built-in training-free ensemble (``ensemble:nb101`` on NB101, ``ensemble:nb301`` on
             NB301, ``ensemble:default`` elsewhere) or ``--ensemble``: a rank aggregate, so every query
             re-ranks all the loop has seen;
  predictor  ``predictor:NAME`` fitted on ``--initial`` labelled architectures, and refitted on one more
             every ``--label-every`` queries (the best-predicted architecture not yet labelled);
  params     the parameter count (the baseline every estimator must beat).
After each query the loop's pick is its fittest architecture so far; the trace records that pick's ground
truth (read from the answers, never used by the proxies), the wall time and the labels used.

The pool is the whole space where its ground truth covers it (NB201) and otherwise the architectures
with published labels (``--pool published``, e.g. NB301's 725 genotypes), so every pick has a ground truth.
A mutation moves to one of the pool's nearest architectures by encoding features (L1 over one-hot ops and op
counts): on NB201, the cells that differ from the parent on one edge or that swap the ops of two edges.
Everything goes over HTTP (archscore_client); the archscore library is used only to enumerate the pool and
compare encodings.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from dataclasses import dataclass, field

import numpy as np

import archscore
from archscore.estimators.catalog import space_ensemble
from archscore.estimators.predictor import DEFAULT_ESTIMATORS
from archscore.estimators.spaces import DEFAULT_SPACE
from archscore_client import Client


@dataclass
class Pool:
    """The architectures a search may visit, in string form, and their encoding features."""

    space: str
    archs: list[str]
    features: np.ndarray
    index: dict[str, int] = field(default_factory=dict)

    @classmethod
    def of(cls, space_name: str, which: str) -> Pool:
        space = archscore.get_space(space_name)
        archs = list(space.enumerate()) if which == "space" else space.published_archs()
        # the encoding without its path features (named "feature[ops]"): on the one-hot ops of the edges
        # and the op counts, a step of L1 distance 2 is one edge's op changed
        columns = [i for i, name in enumerate(space.feature_names()) if "[" not in name]
        features = np.array([space.encoding_features(a) for a in archs], dtype=np.float32)[:, columns]
        strings = [space.to_string(a) for a in archs]
        return cls(space.name, strings, features, {a: i for i, a in enumerate(strings)})

    def neighbours(self, arch: str, rng: random.Random) -> str:
        """A random one of the pool's architectures nearest to ``arch`` (L1 over encoding features)."""
        distance = np.abs(self.features - self.features[self.index[arch]]).sum(axis=1)
        distance[self.index[arch]] = np.inf
        nearest = np.flatnonzero(distance == distance.min())
        return self.archs[int(rng.choice(list(nearest)))]


class Fitness:
    """Evaluates architectures for one strategy over HTTP and keeps what the loop has seen."""

    def __init__(self, client: Client, pool: Pool, strategy: str, protocol: dict, args, seed: int):
        self.client, self.pool, self.strategy, self.protocol, self.args = client, pool, strategy, protocol, args
        self.values: dict[str, float] = {}  # the fitness the loop sees
        self.truth: dict[str, float] = {}  # ground truth, for the trace only (the oracle's fitness)
        self.labelled: list[str] = []
        self.queries = 0
        self.predictor = f"search-{pool.space}-{seed}"
        self.rng = random.Random(f"labels-{seed}")  # not the search's own draws

    def _score(self, archs: list[str], estimators: list[str]):
        job = self.client.score(archs, estimators, space=self.pool.space, protocol=self.protocol, wait=3600)
        for result in job.results or []:
            if result.ground_truth is not None:
                self.truth[result.arch] = result.ground_truth
        return job.results or []

    def _label(self, archs: list[str]) -> None:
        """Label ``archs`` (the ground truth a training run would give) and refit the predictor on all labels."""
        self.labelled += [a for a in archs if a not in self.labelled]
        self._score(archs, ["params"])
        body = {"space": self.pool.space, "archs": self.labelled, "estimators": self.args.predictor_estimators}
        self.client.fit_predictor(self.predictor, **body, protocol=self.protocol)  # the same name: replaced
        fitted = self.client.predictor(self.predictor, wait=60)
        while fitted["status"] in ("queued", "running"):
            fitted = self.client.predictor(self.predictor, wait=60)
        if fitted["status"] != "done":
            raise RuntimeError(f"predictor {self.predictor}: {fitted['status']} {fitted.get('error')}")

    def start(self) -> None:
        if self.strategy == "predictor":
            self._label(self.rng.sample(self.pool.archs, self.args.initial))

    def query(self, arch: str) -> None:
        """Evaluate one more architecture; every value the loop holds is brought up to date."""
        self.queries += 1
        if self.strategy == "oracle":
            self._score([arch], ["params"])
            self.labelled.append(arch)
            self.values[arch] = self.truth[arch]
        elif self.strategy == "params":
            self.values[arch] = self._score([arch], ["params"])[0].scores["params"]
        elif self.strategy == "ensemble":  # a rank within the population: re-rank everything seen
            seen = [*self.values, arch] if arch not in self.values else list(self.values)
            for result in self._score(seen, [self.args.ensemble]):
                self.values[result.arch] = result.scores[self.args.ensemble]
        else:
            if self.queries % self.args.label_every == 0:
                candidates = [
                    a for a in sorted(self.values, key=self.values.get, reverse=True) if a not in self.labelled
                ]
                if candidates:
                    self._label(candidates[:1])
                    # a refitted predictor: every value the loop holds is predicted again
                    seen = list(self.values)
                    for result in self._score(seen, [f"predictor:{self.predictor}"]):
                        self.values[result.arch] = result.scores[f"predictor:{self.predictor}"]
            self.values[arch] = self._score([arch], [f"predictor:{self.predictor}"])[0].scores[
                f"predictor:{self.predictor}"
            ]

    def best(self) -> str:
        return max(self.values, key=lambda a: -np.inf if self.values[a] is None else self.values[a])


def random_search(fitness: Fitness, pool: Pool, rng: random.Random, budget: int, trace) -> None:
    for arch in rng.sample(pool.archs, budget):
        fitness.query(arch)
        trace()


def evolution(fitness: Fitness, pool: Pool, rng: random.Random, budget: int, trace, population: int, sample: int):
    members = rng.sample(pool.archs, min(population, budget))
    for arch in members:
        fitness.query(arch)
        trace()
    for _ in range(budget - len(members)):
        contenders = rng.sample(members, min(sample, len(members)))
        parent = max(contenders, key=lambda a: -np.inf if fitness.values[a] is None else fitness.values[a])
        child = pool.neighbours(parent, rng)
        fitness.query(child)
        trace()
        members = [*members[1:], child]


def run(client: Client, pool: Pool, algorithm: str, strategy: str, seed: int, args) -> list[dict]:
    rng = random.Random(seed)
    protocol = {"batch_size": args.batch_size}
    fitness = Fitness(client, pool, strategy, protocol, args, seed)
    started = time.monotonic()
    fitness.start()
    rows: list[dict] = []

    def trace() -> None:
        best = fitness.best()
        if best not in fitness.truth:  # its ground truth, for the record only
            fitness._score([best], ["params"])
        rows.append(
            {
                "space": pool.space,
                "algorithm": algorithm,
                "strategy": strategy,
                "seed": seed,
                "query": fitness.queries,
                "labels": len(fitness.labelled),
                "seconds": round(time.monotonic() - started, 3),
                "best_truth": fitness.truth[best],
            }
        )

    if algorithm == "random":
        random_search(fitness, pool, rng, args.budget, trace)
    else:
        evolution(fitness, pool, rng, args.budget, trace, args.population, args.sample)
    if strategy == "predictor":
        client.delete_predictor(fitness.predictor)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--space", default=DEFAULT_SPACE)
    parser.add_argument("--pool", choices=("space", "published"), default="space")
    parser.add_argument("--algorithms", default="random,evolution")
    parser.add_argument("--strategies", default="oracle,ensemble,predictor,params")
    parser.add_argument("--budget", type=int, default=100, help="queries per run")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--population", type=int, default=20)
    parser.add_argument("--sample", type=int, default=5)
    parser.add_argument("--initial", type=int, default=10, help="the predictor's first labelled architectures")
    parser.add_argument("--label-every", type=int, default=10, help="queries between two new labels")
    parser.add_argument(
        "--predictor-estimators",
        type=lambda text: text.split(","),
        default=list(DEFAULT_ESTIMATORS),
    )
    parser.add_argument("--ensemble", help="the ensemble strategy's estimator (default: the space's built-in)")
    parser.add_argument("--batch-size", type=int, default=128, help="the zero-shot protocol's batch")
    parser.add_argument("--out", help="append the traces here (JSON lines)")
    args = parser.parse_args()
    args.ensemble = args.ensemble or space_ensemble(args.space).name
    pool = Pool.of(args.space, args.pool)
    out = open(args.out, "a") if args.out else None
    with Client(args.url, timeout=120) as client:
        for seed in range(args.seeds):
            for algorithm in args.algorithms.split(","):
                for strategy in args.strategies.split(","):
                    rows = run(client, pool, algorithm, strategy, seed, args)
                    last = rows[-1]
                    print(
                        f"{pool.space} {algorithm:9} {strategy:9} seed {seed}: best found {last['best_truth']:.2f} "
                        f"after {last['query']} queries, {last['labels']} labels, {last['seconds']:.0f} s",
                        flush=True,
                    )
                    if out:
                        out.writelines(json.dumps(r) + "\n" for r in rows)
                        out.flush()
    if out:
        out.close()
    return None


if __name__ == "__main__":
    sys.exit(main())
