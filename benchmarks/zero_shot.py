"""Zero-shot scoring cost, measured side by side in one run.

For a fixed sample of architectures of each space: the time of each built-in proxy alone; for the paper's
ten, the sum of the ten separate calls, all ten in one call (shared passes) and the nine without grasp in
one call; for the proxies published since 2021, the sum of their separate calls and all of them in one
call; each also as a multiple of one forward pass of the same network on the same batch (the floor).
Figures are medians over architectures of the per-architecture median over repeats.

    python benchmarks/zero_shot.py [--space all|nb201|...] [--cells 6] [--repeats 3] [--batch-sizes 64,128]
                                   [--device cpu|cuda]

With ``--extremes``, each space is measured instead on three architectures of a sample of ``--cells``
(by FLOPs: the smallest, the median and the largest), one table each:

    python benchmarks/zero_shot.py --space nds_resnet --extremes --cells 50 --batch-sizes 16 --repeats 1
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from archscore.estimators.datasets import fixed_batches, load_embedded_cifar10
from archscore.estimators.device import DEVICE_HELP, resolve_device
from archscore.estimators.spaces import get_space, list_spaces
from archscore.estimators.spaces.base import NETWORK
from archscore.estimators.zero_shot.engine import score_module
from archscore.estimators.zero_shot.manifest import ZERO_SHOT

# the ten of Ning et al.'s paper; the other built-in ones were published since
PAPER = ("grad_norm", "snip", "grasp", "fisher", "jacob_cov", "synflow", "relu_logdet", "relu", "params", "flops")
MODERN = tuple(n for n, info in ZERO_SHOT.items() if n not in PAPER and info.module is None)


def timed(fn, repeats: int) -> float:
    """Median seconds of ``fn`` over ``repeats`` runs after one warm-up, GPU work included."""

    def wait() -> None:
        if torch.cuda.is_available():
            torch.cuda.synchronize()

    fn()  # warm-up
    samples = []
    for _ in range(repeats):
        wait()
        start = time.perf_counter()
        fn()
        wait()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def bench_cell(space, arch, x, y, repeats: int) -> dict[str, float]:
    torch.manual_seed(0)
    net = space.build_network(arch).to(x.device)
    net.train()

    def forward():
        with torch.no_grad():
            net(x)

    times = {"forward": timed(forward, repeats)}
    for name in (*PAPER, *MODERN):
        times[name] = timed(lambda n=name: score_module(net, x, y, [n]), repeats)
    times["separate_sum"] = sum(times[n] for n in PAPER)
    times["one_call"] = timed(lambda: score_module(net, x, y, list(PAPER)), repeats)
    nine = [n for n in PAPER if n != "grasp"]
    times["one_call_no_grasp"] = timed(lambda: score_module(net, x, y, nine), repeats)
    times["separate_sum_no_grasp"] = sum(times[n] for n in nine)
    times["separate_sum_modern"] = sum(times[n] for n in MODERN)
    times["one_call_modern"] = timed(lambda: score_module(net, x, y, list(MODERN)), repeats)
    return times


def describe(device: str) -> str:
    if device == "cpu":
        return f"cpu, {torch.get_num_threads()} threads"
    return torch.cuda.get_device_name(torch.device(device))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cells", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-sizes", default="64,128")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--space", default="all", help="a space name, or all")
    parser.add_argument("--device", default="cpu", help=DEVICE_HELP)
    parser.add_argument(
        "--extremes",
        action="store_true",
        help="the smallest, median and largest (by FLOPs) of the sample, each on its own",
    )
    args = parser.parse_args()
    args.device = resolve_device(args.device)

    names = list_spaces() if args.space == "all" else [get_space(args.space).name]
    images = load_embedded_cifar10("train")
    print(
        f"torch {torch.__version__}, {describe(args.device)}, {args.cells} architectures per space "
        f"(seed {args.seed}), medians over architectures of the median of {args.repeats} repeats"
    )
    for name in names:
        space = get_space(name)
        if not space.has(NETWORK):
            continue
        archs = space.sample(args.cells, args.seed)
        if not args.extremes:
            bench_space(space, archs, images, args, "")
            continue
        by_flops = sorted(archs, key=lambda a: space.cost(a)[1])
        for label, arch in (
            ("smallest", by_flops[0]),
            ("median", by_flops[len(by_flops) // 2]),
            ("largest", by_flops[-1]),
        ):
            mflops = space.cost(arch)[1] / 1e6
            bench_space(
                space,
                [arch],
                images,
                args,
                f", {label} of {len(archs)}: {space.to_string(arch)} ({mflops:,.0f} MFLOPs)",
            )


def bench_space(space, archs, images, args, title: str) -> None:
    for batch_size in (int(b) for b in args.batch_sizes.split(",")):
        ((x, y),) = fixed_batches(images, batch_size, 1, seed=20)
        x, y = x.to(args.device), y.to(args.device)
        per_cell = [bench_cell(space, a, x, y, args.repeats) for a in archs]
        rows = [
            "forward",
            *PAPER,
            "separate_sum",
            "one_call",
            "separate_sum_no_grasp",
            "one_call_no_grasp",
            *MODERN,
            "separate_sum_modern",
            "one_call_modern",
        ]
        print(f"\n{space.name}{title}, batch {batch_size}", flush=True)
        print(f"{'':24s}{'ms':>10s}{'x forward':>12s}")
        for row in rows:
            ms = statistics.median(c[row] for c in per_cell) * 1e3
            ratio = statistics.median(c[row] / c["forward"] for c in per_cell)
            print(f"{row:24s}{ms:10.1f}{ratio:12.2f}")
        speedup = statistics.median(c["separate_sum"] / c["one_call"] for c in per_cell)
        speedup_ng = statistics.median(c["separate_sum_no_grasp"] / c["one_call_no_grasp"] for c in per_cell)
        speedup_modern = statistics.median(c["separate_sum_modern"] / c["one_call_modern"] for c in per_cell)
        print(f"{'shared / separate speedup':24s}{'':10s}{speedup:12.2f}  (without grasp {speedup_ng:.2f})")
        print(f"{'  since 2021':24s}{'':10s}{speedup_modern:12.2f}")


if __name__ == "__main__":
    main()
