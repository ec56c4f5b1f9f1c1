"""The figure and the table of search traces (examples/search/search.py's JSON lines): the ground truth of
each loop's pick against the number of queries and against wall time, averaged over seeds.

    python examples/search/plot.py nb201.jsonl --out nb201.png    # or the .jsonl.gz of the full runs
"""

from __future__ import annotations

import argparse
import gzip
import json
import statistics
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

COLOURS = {"oracle": "black", "ensemble": "tab:blue", "predictor": "tab:green", "params": "tab:orange"}
STYLES = {"evolution": "-", "random": "--"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("traces", nargs="+")
    parser.add_argument("--out", required=True, help="the figure (PNG)")
    args = parser.parse_args()
    runs: dict[tuple[str, str], dict[int, list[dict]]] = defaultdict(lambda: defaultdict(list))
    space = ""
    for path in args.traces:
        for line in gzip.open(path, "rt") if path.endswith(".gz") else open(path):
            row = json.loads(line)
            space = row["space"]
            runs[(row["algorithm"], row["strategy"])][row["seed"]].append(row)
    fig, (by_query, by_time) = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    print(f"| {space}: algorithm | fitness | seeds | best found (mean ± std) | labels | seconds |")
    print("|---|---|---|---|---|---|")
    for (algorithm, strategy), seeds in sorted(runs.items()):
        length = min(len(rows) for rows in seeds.values())
        mean = [statistics.mean(rows[i]["best_truth"] for rows in seeds.values()) for i in range(length)]
        seconds = [statistics.mean(rows[i]["seconds"] for rows in seeds.values()) for i in range(length)]
        style = {"color": COLOURS.get(strategy), "linestyle": STYLES.get(algorithm, "-")}
        by_query.plot(range(1, length + 1), mean, label=f"{algorithm}, {strategy}", **style)
        by_time.plot(seconds, mean, **style)
        finals = [rows[length - 1] for rows in seeds.values()]
        best = [r["best_truth"] for r in finals]
        spread = statistics.stdev(best) if len(best) > 1 else 0.0
        labels = statistics.mean(r["labels"] for r in finals)
        took = statistics.mean(r["seconds"] for r in finals)
        print(
            f"| {algorithm} | {strategy} | {len(best)} | {statistics.mean(best):.2f} ± {spread:.2f} "
            f"| {labels:.0f} | {took:.0f} |"
        )
    by_query.set_xlabel("queries (architectures evaluated)")
    by_query.set_ylabel("ground truth of the loop's pick")
    by_time.set_xlabel("wall time (s)")
    by_time.set_xscale("symlog", linthresh=1)
    by_query.legend(fontsize=8)
    fig.suptitle(f"{space}: search with each fitness, mean over seeds")
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)


if __name__ == "__main__":
    main()
