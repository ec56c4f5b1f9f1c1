"""Peak memory of scoring one architecture with every zero-shot estimator, per space and batch size.

Each measurement runs in a fresh process (peak RSS only grows): the largest of a sample of
architectures (by FLOPs) is scored with all ten estimators under the given batch size, then the
process reports its peak resident set size, beside the estimate the workers use to refuse networks
that would not fit (estimators/zero_shot/memory.py; it should never be below the peak). Scoring builds
one network at a time and frees its graph before the next batch, so the peak is one network's forward/backward
graph plus the process baseline.

    python benchmarks/memory.py [--space all] [--batch-sizes 32,64,128] [--sample 50]
    python benchmarks/memory.py --space nds_resnet --arch d24-24-24_w256-256-256 --batch-sizes 4,8
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time


def measure(space_name: str, batch_size: int, sample: int, arch: str | None) -> dict:
    import torch

    from archscore.estimators.protocol import Protocol
    from archscore.estimators.spaces import get_space
    from archscore.estimators.zero_shot import memory
    from archscore.estimators.zero_shot.engine import protocol_batches, score_architecture

    space = get_space(space_name)
    largest = space.parse(arch) if arch else max(space.sample(sample, seed=0), key=lambda a: space.cost(a)[1])
    protocol = Protocol(batch_size=batch_size)
    protocol_batches(protocol)
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.perf_counter()
    score_architecture(largest, space_name, None, protocol, memory_limit=2**62)  # measure, never refuse
    with torch.device("meta"):
        meta_net = space.build_network(largest)
    params = sum(p.numel() for p in meta_net.parameters())
    estimate = memory.scoring_bytes(memory.feature_elements(meta_net), params, batch_size)
    return {
        "estimate_mib": estimate / 2**20,
        "space": space_name,
        "arch": space.to_string(largest),
        "batch_size": batch_size,
        "mflops": space.cost(largest)[1] / 1e6,
        "seconds": time.perf_counter() - started,
        "baseline_mib": baseline,
        "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--space", default="all")
    parser.add_argument("--batch-sizes", default="32,64,128")
    parser.add_argument("--sample", type=int, default=50, help="architectures to pick the largest from")
    parser.add_argument("--arch", help="score this architecture instead of the largest of the sample")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child[0], int(args.child[1]), args.sample, args.arch)))
        return
    from archscore.estimators.spaces import get_space, list_spaces
    from archscore.estimators.spaces.base import NETWORK

    names = [n for n in list_spaces() if get_space(n).has(NETWORK)] if args.space == "all" else [args.space]
    print(
        f"{'space':13s}{'batch':>6s}{'MFLOPs':>9s}{'seconds':>9s}{'baseline MiB':>14s}{'peak MiB':>10s}"
        f"{'estimate MiB':>14s}  architecture"
    )
    for name in names:
        for batch_size in args.batch_sizes.split(","):
            out = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--sample",
                    str(args.sample),
                    *(["--arch", args.arch] if args.arch else []),
                    "--child",
                    name,
                    batch_size,
                ],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            r = json.loads(out.splitlines()[-1])
            print(
                f"{name:13s}{r['batch_size']:6d}{r['mflops']:9.1f}{r['seconds']:9.1f}{r['baseline_mib']:14.0f}"
                f"{r['peak_mib']:10.0f}{r['estimate_mib']:14.0f}  {r['arch'][:60]}",
                flush=True,
            )


if __name__ == "__main__":
    main()
