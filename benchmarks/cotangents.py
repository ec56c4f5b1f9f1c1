"""One backward per cotangent against several at once (estimators/zero_shot/passes/cotangents.py), side by side.

For each of a sample of architectures: ntk_cond (64 backward passes, one per image) and vkdnw (one per class)
scored with the passes taken one at a time and then batched (``--chunks``: cotangents per batched backward),
as multiples of one forward pass of the same network on the same batch; medians over architectures of the
median over repeats. The scores themselves are checked equal.

    python benchmarks/cotangents.py [--space nb201] [--cells 3] [--repeats 3] [--batch-size 64] [--device cpu]
"""

from __future__ import annotations

import argparse
import statistics

import torch
from zero_shot import describe, timed

from archscore.estimators.datasets import fixed_batches, load_embedded_cifar10
from archscore.estimators.device import DEVICE_HELP, resolve_device
from archscore.estimators.spaces import get_space
from archscore.estimators.zero_shot.engine import score_module
from archscore.estimators.zero_shot.passes import cotangents

PROXIES = ("ntk_cond", "vkdnw")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--space", default="nb201")
    parser.add_argument("--cells", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--chunks", default="4,16,64", help="cotangents per batched backward, comma-separated")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu", help=DEVICE_HELP)
    args = parser.parse_args()
    device = resolve_device(args.device)
    space = get_space(args.space)
    ((x, y),) = fixed_batches(load_embedded_cifar10("train"), args.batch_size, 1, seed=20)
    x, y = x.to(device), y.to(device)
    chunks = [int(c) for c in args.chunks.split(",")]
    modes = [("one at a time", False, cotangents.COTANGENTS_AT_ONCE)] + [(f"batched {c}", True, c) for c in chunks]
    ratios: dict[tuple[str, str], list[float]] = {}
    for arch in space.sample(args.cells, args.seed):
        torch.manual_seed(0)
        net = space.build_network(arch).to(device).train()

        def forward() -> None:
            with torch.no_grad():
                net(x)

        once = timed(forward, args.repeats)
        values = {}
        for label, batched, chunk in modes:
            cotangents.batched_on = lambda _device, b=batched: b  # type: ignore[assignment]
            cotangents.COTANGENTS_AT_ONCE = chunk
            for name in PROXIES:
                seconds = timed(lambda n=name: score_module(net, x, y, [n]), args.repeats)
                ratios.setdefault((label, name), []).append(seconds / once)
            values[label] = {n: v.value for n, v in score_module(net, x, y, list(PROXIES)).items()}
        first = values[modes[0][0]]
        for label, got in values.items():
            for name in PROXIES:
                a, b = first[name], got[name]
                assert (a is None and b is None) or abs(a - b) <= 1e-4 * max(abs(a), abs(b)), (label, name, a, b)
    print(
        f"{space.name}, batch {args.batch_size}, {args.cells} architectures (seed {args.seed}), "
        f"torch {torch.__version__}, {describe(device)}"
    )
    print(f"{'':16s}" + "".join(f"{n:>12s}" for n in PROXIES) + "   (x forward)")
    for label, _, _ in modes:
        row = "".join(f"{statistics.median(ratios[(label, n)]):12.2f}" for n in PROXIES)
        print(f"{label:16s}{row}")


if __name__ == "__main__":
    main()
