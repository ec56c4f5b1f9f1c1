"""One-shot estimators at CPU scale (the paper's RQ1/RQ3), and what the supernet costs, on any space.

1. Cost: one supernet evaluation of an architecture vs a forward pass of its standalone network, and
   one supernet training step (S=1) vs a standalone training step; medians over architectures, side
   by side. The standalone network is the space's own at the supernet's size, carrying the supernet's
   weights where they transfer (NB101's is channel-split, so it does less work than the supernet's
   full-width cell: the ratio says what weight sharing costs there).
2. Experiment: train a supernet on the embedded CIFAR-10 subset with each sampler for the same number
   of epochs, evaluate the same architectures with each (NB201: sampled cells; spaces that ship a
   subset of ground truth: that subset's architectures), and print the criteria of oneshot_acc and
   oneshot_loss against the ground truth next to params and synflow on those architectures.

    python benchmarks/one_shot.py [--space nb201] [--network C=16 --network N=5] [--epochs 30] [--cells 500]
        [--samplers uniform,deiso] [--out runs/one_shot] [--archs-per-step 1] [--patience 3]
        [--schedule plateau|cosine] [--lr 0.05] [--average-last K]
        [--batch-size 128] [--skip-cost | --cost-only]

A checkpoint already in --out with the same training configuration is reused (only evaluated again).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from scipy import stats

from archscore.estimators.catalog import ONE_SHOT
from archscore.estimators.datasets import fixed_batches, load_dataset
from archscore.estimators.one_shot import training
from archscore.estimators.one_shot.checkpoints import average_checkpoints, load_checkpoint
from archscore.estimators.one_shot.evaluation import score_arch, validation_batches
from archscore.estimators.one_shot.registry import read_manifest
from archscore.estimators.one_shot.samplers import SAMPLERS
from archscore.estimators.protocol import Protocol
from archscore.estimators.ranking import ranking_report
from archscore.estimators.spaces import get_space
from archscore.estimators.spaces.base import ENUMERATE, PUBLISHED
from archscore.estimators.truth import load_builtin
from archscore.estimators.zero_shot.engine import score_architecture

# one-shot scores on the 500-image validation split, or on it and the 1,000 test images
EVALUATION_BATCHES = {"validation": 5, "held_out": 15}
IMAGES_TAG = {"validation": "", "held_out": ", held out"}


def median_time(fn, repeats: int = 3) -> float:
    fn()
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def standalone_of(space, supernet, arch):
    """The space's standalone network of ``arch`` at the supernet's size (with its weights where they transfer)."""
    if space.supernet_transfers_weights:
        path = space.supernet_path(arch)
        net = space.build_network(path, **supernet.standalone_config())
        net.load_state_dict(supernet.standalone_state_dict(path))
        return net
    sizes = {k: v for k, v in supernet.config.items() if k in space.default_network}
    return space.build_network(arch, **sizes)


def cost(space, network: dict, cells: int, batch_size: int) -> None:
    import random

    images = load_dataset("cifar10", "train")
    ((x, y),) = fixed_batches(images, batch_size, 1, seed=0)
    supernet = space.make_supernet(**space.supernet_config(network), num_classes=10)
    optimizer = torch.optim.SGD(supernet.parameters(), 0.0, momentum=0.9)
    eval_ratio, step_ratio = [], []
    for arch in SAMPLERS["uniform"](supernet.sampling_space(space), random.Random(0), cells):
        net = standalone_of(space, supernet, arch)
        supernet.train(), net.train()
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
    print(
        f"{space.name} {supernet.config}: cost over {cells} architectures, batch {batch_size}, medians "
        "(ratios measured per architecture, side by side):"
    )
    print(f"  supernet evaluation / standalone forward   {statistics.median(eval_ratio):.3f}   (target <= 1.2)")
    print(f"  supernet training step / standalone step   {statistics.median(step_ratio):.3f}   (target <= 1.3)")


def evaluated_archs(space, n: int, column: str) -> list:
    """NB201 (every cell has ground truth): n sampled cells; otherwise n of the architectures with
    ground truth in the shipped subset (seed 0)."""
    import random

    if space.has(ENUMERATE):
        return space.sample(n, 0)
    truth = space.ground_truth(column)
    with_truth = [a for a in space.published_archs() if space.truth_key(a) in truth] if space.has(PUBLISHED) else []
    return random.Random(0).sample(with_truth, min(n, len(with_truth)))


def experiment(args) -> None:
    space = args.space
    column = args.truth or space.ground_truth_columns[0]
    archs = evaluated_archs(space, args.cells, column)
    truth = load_builtin(space.name, column)
    values = [truth.get(a) for a in archs]
    ids = [space.canonical_key(a) + space.to_string(a) for a in archs]
    rows = {}
    for sampler in args.samplers.split(","):
        folder = args.out / sampler
        config = training.TrainConfig(
            sampler=sampler,
            space=space.name,
            epochs=args.epochs,
            archs_per_step=args.archs_per_step,
            patience=args.patience,
            schedule=args.schedule,
            lr=args.lr,
            network=args.network,
            keep_snapshots=args.average_last,
            batch_size=args.batch_size,
        )
        existing = read_manifest(folder)
        if existing and existing.get("train_config") == config.model_dump() and existing.get("complete"):
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
        print(
            f"{sampler}: {last['epoch']} epochs in {last['seconds'] / 60:.1f} min ({manifest['network']}, "
            f"S={args.archs_per_step}, batch {args.batch_size}, {args.schedule} schedule, lr {args.lr}), "
            f"train loss {last['train_loss']:.3f}, validation loss {last['val_loss']:.3f}, final lr {last['lr']:.4g}"
        )
        print("  validation loss by epoch: " + " ".join(f"{h['val_loss']:.3f}" for h in history))
        post = [False, True] if space.has("isomorphism") else [False]
        for images in args.images.split(","):
            batches = validation_batches(manifest, 100, EVALUATION_BATCHES[images], images=images)
            for tag, path in checkpoints.items():
                supernet, _ = load_checkpoint(path)
                started = time.perf_counter()
                for deiso in post:
                    scores = [score_arch(supernet, a, batches, post_deiso=deiso) for a in archs]
                    for name in ONE_SHOT:
                        label = f"{sampler}{tag}{', post-deiso' if deiso else ''}{IMAGES_TAG[images]}"
                        rows[f"{name} ({label})"] = [s[name] for s in scores]
                print(
                    f"  {path.name}: evaluated {len(archs)} architectures on {100 * len(batches)} {images} images "
                    f"in {time.perf_counter() - started:.0f} s"
                )
    rows["params"] = [space.cost(a)[0] / 1e6 for a in archs]
    rows["synflow"] = [
        score_architecture(a, space.name, ["synflow"], Protocol()).scores["synflow"].value for a in archs
    ]
    print(
        f"\n{len(archs)} {space.name} architectures (seed 0) vs {column}; one-shot on the 500 validation images "
        "(5 batches of 100) or, marked 'held out', on those and the 1,000 test images (15 batches), BN in train mode"
    )
    print(
        f"{'estimator':50s}{'Kendall τ':>10s}{'p':>10s}{'Spearman':>10s}{'P@top5%':>9s}{'P@top50%':>9s}"
        f"{'BR@1%':>8s}{'WR@1%':>8s}"
    )
    for name, scores in rows.items():
        r = ranking_report(scores, values, ids)
        finite = [(s, g) for s, g in zip(scores, values) if s is not None and g is not None]
        p = stats.kendalltau([s for s, _ in finite], [g for _, g in finite]).pvalue
        fmt = lambda v: "-" if v is None else f"{v:.3f}"
        print(
            f"{name:50s}{fmt(r['kendall_tau']):>10s}{p:10.1e}{fmt(r['spearman']):>10s}"
            f"{fmt(r['p_at_top'].get('0.05')):>9s}{fmt(r['p_at_top'].get('0.5')):>9s}"
            f"{fmt(r['br_at'].get('0.01')):>8s}{fmt(r['wr_at'].get('0.01')):>8s}"
        )


def network_settings(pairs: list[str]) -> dict[str, int]:
    settings = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        settings[key] = int(value)
    return settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--space", default="nb201")
    parser.add_argument("--network", action="append", default=[], help="KEY=VALUE supernet setting (repeatable)")
    parser.add_argument("--truth", default=None, help="ground-truth column (default: the space's first)")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--cells", type=int, default=500, help="architectures to evaluate")
    parser.add_argument("--archs-per-step", type=int, default=1)
    parser.add_argument("--patience", type=int, default=3)
    parser.add_argument("--schedule", default="plateau", help="plateau or cosine")
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--average-last", type=int, default=0, help="also evaluate the average of the last K epochs")
    parser.add_argument(
        "--images",
        default="validation",
        help="validation and/or held_out: the images one-shot scores are taken on (comma list)",
    )
    parser.add_argument("--cost-cells", type=int, default=8)
    parser.add_argument("--samplers", default="uniform,deiso")
    parser.add_argument("--out", type=Path, default=Path("runs/one_shot"))
    parser.add_argument("--skip-cost", action="store_true")
    parser.add_argument("--cost-only", action="store_true")
    args = parser.parse_args()
    args.space = get_space(args.space)
    args.network = network_settings(args.network)
    args.space.supernet_config(args.network)  # refuse unknown or out-of-range settings before any work
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    if not args.skip_cost:
        cost(args.space, args.network, args.cost_cells, args.batch_size)
    if not args.cost_only:
        experiment(args)


if __name__ == "__main__":
    main()
