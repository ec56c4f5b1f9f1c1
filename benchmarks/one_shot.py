"""One-shot estimators at CPU scale (the paper's RQ1/RQ3), and what the supernet costs.

1. Cost: one supernet evaluation of an architecture vs a forward pass of its standalone network, and
   one supernet training step (S=1) vs a standalone training step; medians over cells, side by side.
2. Experiment: train a supernet on the embedded CIFAR-10 subset with the uniform and with the
   de-isomorphic sampler for the same number of epochs, evaluate the same NB201 cells with each, and
   print the criteria of oneshot_acc and oneshot_loss against cifar10_test next to params and synflow
   on those cells.

    python benchmarks/one_shot.py [--epochs 30] [--cells 500] [--samplers uniform,deiso] [--out runs/one_shot]
        [--channels 16] [--cells-per-stage 5] [--archs-per-step 1] [--patience 3] [--average-last K]

A checkpoint already in --out with the same training configuration is reused (only evaluated again).
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from scipy import stats

from estimators.datasets import fixed_batches, load_dataset
from estimators.one_shot import training
from estimators.one_shot.checkpoints import average_checkpoints, load_checkpoint
from estimators.one_shot.evaluation import score_arch, validation_batches
from estimators.one_shot.registry import read_manifest
from estimators.one_shot.samplers import SAMPLERS
from estimators.spaces.nb201.supernet import NB201Supernet
from estimators.protocol import Protocol
from estimators.ranking import ranking_report
from estimators.spaces import get_space
from estimators.truth import load_builtin
from estimators.zero_shot.engine import score_architecture

SPACE = get_space("nb201")


def median_time(fn, repeats: int = 3) -> float:
    fn()
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def cost(cells: int) -> None:
    images = load_dataset("cifar10", "train")
    (x, y), = fixed_batches(images, 128, 1, seed=0)
    supernet = NB201Supernet()
    optimizer = torch.optim.SGD(supernet.parameters(), 0.0, momentum=0.9)
    eval_ratio, step_ratio = [], []
    import random

    for arch in SAMPLERS["uniform"](SPACE, random.Random(0), cells):
        net = SPACE.build_network(arch)
        net.load_state_dict(supernet.standalone_state_dict(arch))
        net_opt = torch.optim.SGD(net.parameters(), 0.0, momentum=0.9)

        def standalone_forward():
            with torch.no_grad():
                net(x)

        def supernet_forward():
            with torch.no_grad():
                supernet(x, arch)

        def standalone_step():
            net_opt.zero_grad()
            F.cross_entropy(net(x), y).backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 5.0)
            net_opt.step()

        def supernet_step():
            training._step(supernet, [arch], x, y, optimizer, 5.0)

        eval_ratio.append(median_time(supernet_forward) / median_time(standalone_forward))
        step_ratio.append(median_time(supernet_step) / median_time(standalone_step))
    print(f"cost over {cells} cells, batch 128, medians (ratios measured per cell, side by side):")
    print(f"  supernet evaluation / standalone forward   {statistics.median(eval_ratio):.3f}   (target <= 1.2)")
    print(f"  supernet training step / standalone step   {statistics.median(step_ratio):.3f}   (target <= 1.3)")


def experiment(args) -> None:
    archs = SPACE.sample(args.cells, 0)
    truth = load_builtin("nb201", "cifar10_test")
    values = [truth.get(a) for a in archs]
    ids = [SPACE.canonical_key(a) + SPACE.to_string(a) for a in archs]
    rows = {}
    for sampler in args.samplers.split(","):
        folder = args.out / sampler
        config = training.TrainConfig(sampler=sampler, epochs=args.epochs, archs_per_step=args.archs_per_step,
                                      patience=args.patience, C=args.channels, N=args.cells_per_stage,
                                      keep_snapshots=args.average_last)
        existing = read_manifest(folder)
        if existing and existing.get("train_config") == dataclasses.asdict(config) and existing.get("complete"):
            print(f"{sampler}: reusing the checkpoint in {folder}")
        else:
            training.train(config, folder, resume=existing is not None)
        checkpoints = {"": folder}
        if args.average_last > 1:
            average_checkpoints(training.snapshots(folder), folder.with_name(f"{sampler}-avg"))
            checkpoints[f", avg of last {args.average_last}"] = folder.with_name(f"{sampler}-avg")
        supernet, manifest = load_checkpoint(folder)
        history = manifest["history"]
        last = history[-1]
        print(f"{sampler}: {last['epoch']} epochs in {last['seconds'] / 60:.1f} min (C={args.channels}, "
              f"N={args.cells_per_stage}, S={args.archs_per_step}), train loss {last['train_loss']:.3f}, "
              f"validation loss {last['val_loss']:.3f}, final lr {last['lr']:.4g}")
        val_batches = validation_batches(manifest, 100, 5)
        for tag, path in checkpoints.items():
            supernet, _ = load_checkpoint(path)
            started = time.perf_counter()
            scores = [score_arch(supernet, a, val_batches) for a in archs]
            deiso = [score_arch(supernet, a, val_batches, post_deiso=True) for a in archs]
            print(f"  {path.name}: evaluated {len(archs)} cells (and their isomorphism classes) "
                  f"in {time.perf_counter() - started:.0f} s")
            for name in ("oneshot_acc", "oneshot_loss"):
                rows[f"{name} ({sampler}{tag})"] = [s[name] for s in scores]
                rows[f"{name} ({sampler}{tag}, post-deiso)"] = [s[name] for s in deiso]
    rows["params"] = [SPACE.cost(a)[0] / 1e6 for a in archs]
    rows["synflow"] = [score_architecture(a, "nb201", ["synflow"], Protocol()).scores["synflow"].value for a in archs]
    print(f"\n{args.cells} NB201 cells (seed 0) vs cifar10_test; one-shot on 5 validation batches of 100, "
          "BN in train mode")
    print(f"{'estimator':50s}{'Kendall τ':>10s}{'p':>10s}{'Spearman':>10s}{'P@top5%':>9s}{'P@top50%':>9s}"
          f"{'BR@1%':>8s}{'WR@1%':>8s}")
    for name, scores in rows.items():
        r = ranking_report(scores, values, ids)
        finite = [(s, g) for s, g in zip(scores, values) if s is not None]
        p = stats.kendalltau([s for s, _ in finite], [g for _, g in finite]).pvalue
        fmt = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
        print(f"{name:50s}{fmt(r['kendall_tau']):>10s}{p:10.1e}{fmt(r['spearman']):>10s}"
              f"{fmt(r['p_at_top'].get('0.05')):>9s}{fmt(r['p_at_top'].get('0.5')):>9s}"
              f"{fmt(r['br_at'].get('0.01')):>8s}{fmt(r['wr_at'].get('0.01')):>8s}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--cells", type=int, default=500, help="NB201 cells to evaluate")
    parser.add_argument("--channels", type=int, default=16, help="C of the supernet")
    parser.add_argument("--cells-per-stage", type=int, default=5, help="N of the supernet")
    parser.add_argument("--archs-per-step", type=int, default=1)
    parser.add_argument("--patience", type=int, default=3)
    parser.add_argument("--average-last", type=int, default=0, help="also evaluate the average of the last K epochs")
    parser.add_argument("--cost-cells", type=int, default=8)
    parser.add_argument("--samplers", default="uniform,deiso")
    parser.add_argument("--out", type=Path, default=Path("runs/one_shot"))
    parser.add_argument("--skip-cost", action="store_true")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    if not args.skip_cost:
        cost(args.cost_cells)
    experiment(args)


if __name__ == "__main__":
    main()
