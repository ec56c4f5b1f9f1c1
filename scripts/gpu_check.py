"""Score a space's cells (default NB201) with every zero-shot estimator on two devices (default: cuda, then
cpu) and report, per estimator, the largest relative difference between the two and the speed-up of the first.

    python scripts/gpu_check.py [--space nb201] [--cells 50] [--seed 0] [--batch-size 128] [--devices cuda cpu] \
        [--out report.md]

The output is a Markdown table, the form docs/results/gpu.md records it in.
"""

from __future__ import annotations

import argparse
import math
import platform
import sys
import time

import archscore
from archscore.estimators.device import DeviceError, resolve_device
from archscore.estimators.spaces import DEFAULT_SPACE
from archscore.estimators.zero_shot.manifest import ZERO_SHOT


def relative_difference(a: float | None, b: float | None) -> float | None:
    """|a - b| / max(|a|, |b|); 0 where both are equal (zeros and nulls included); None where only one
    is null (a disagreement the table shows as such)."""
    if a is None or b is None:
        return 0.0 if a is b else None
    if a == b:
        return 0.0
    if not (math.isfinite(a) and math.isfinite(b)):
        return math.inf
    return abs(a - b) / max(abs(a), abs(b))


def timed_scores(
    cells, space: str, device: str, protocol: archscore.Protocol
) -> tuple[list[archscore.ArchScore], float]:
    names = list(ZERO_SHOT)
    archscore.score(cells[:1], space=space, estimators=names, protocol=protocol, device=device)  # warm-up
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()
    started = time.perf_counter()
    records = archscore.score(cells, space=space, estimators=names, protocol=protocol, device=device)
    return records, time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", default=DEFAULT_SPACE)
    parser.add_argument("--cells", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=128, help="the protocol's batch (default: the paper's)")
    parser.add_argument("--devices", nargs=2, default=["cuda", "cpu"], metavar=("FIRST", "SECOND"))
    parser.add_argument("--out", help="also write the report here")
    args = parser.parse_args(argv)
    try:
        first, second = (resolve_device(d) for d in args.devices)
    except DeviceError as exc:
        print(f"gpu_check: {exc}", file=sys.stderr)
        return 2
    import torch

    try:
        space = archscore.get_space(args.space)
    except KeyError as exc:
        print(f"gpu_check: --space: {exc.args[0]}", file=sys.stderr)
        return 2
    cells = space.sample(args.cells, seed=args.seed)
    protocol = archscore.Protocol(batch_size=args.batch_size)
    a, seconds_a = timed_scores(cells, args.space, first, protocol)
    b, seconds_b = timed_scores(cells, args.space, second, protocol)
    name = torch.cuda.get_device_name(0) if torch.cuda.is_available() else platform.processor() or "cpu"
    lines = [
        f"{args.cells} {args.space} cells (seed {args.seed}), every zero-shot estimator, the default protocol at batch "
        f"{args.batch_size}; "
        f"torch {torch.__version__}, {name}.",
        "",
        f"| estimator | largest relative difference {first} vs {second} | null on one device only |",
        "|---|---|---|",
    ]
    for estimator in ZERO_SHOT:
        diffs = [relative_difference(x.scores[estimator], y.scores[estimator]) for x, y in zip(a, b)]
        known = [d for d in diffs if d is not None]
        worst = max(known) if known else 0.0
        lines.append(f"| {estimator} | {worst:.2e} | {sum(d is None for d in diffs)} |")
    lines += [
        "",
        f"Scoring time: {first} {seconds_a:.1f} s, {second} {seconds_b:.1f} s; "
        f"speed-up {seconds_b / seconds_a:.1f}x (after one warm-up cell on each).",
    ]
    report = "\n".join(lines) + "\n"
    print(report)
    if args.out:
        with open(args.out, "w") as f:
            f.write(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
