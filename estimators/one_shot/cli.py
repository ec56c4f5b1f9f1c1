"""`archscore supernet train | eval`: the one-shot estimator from the command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from estimators.cli import _progress, err, fail, out
from estimators.ranking import ranking_report
from estimators.spaces import get_space
from estimators.truth import TruthError, resolve_truth

app = typer.Typer(help="Train and evaluate weight-sharing supernets (one-shot estimators).", no_args_is_help=True)


@app.command()
def train(
    out_dir: Annotated[Path, typer.Option("--out", help="checkpoint folder")],
    sampler: Annotated[str, typer.Option(help="uniform, deiso or fair")] = "uniform",
    archs_per_step: Annotated[int, typer.Option("--archs-per-step", help="S architectures per step")] = 1,
    epochs: Annotated[int, typer.Option(help="total epochs (with --resume: continue up to this)")] = 1,
    batch_size: Annotated[int, typer.Option("--batch-size")] = 128,
    lr: Annotated[float, typer.Option()] = 0.05,
    channels: Annotated[int, typer.Option("--channels", help="C of the network")] = 16,
    cells: Annotated[int, typer.Option("--cells", help="N cells per stage")] = 5,
    seed: Annotated[int, typer.Option()] = 0,
    data_root: Annotated[str | None, typer.Option("--data-root", help="full CIFAR-10 python batches")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="continue from the checkpoint in --out")] = False,
) -> None:
    """Train an NB201 supernet on the embedded CIFAR-10 subset (or --data-root) and write a checkpoint."""
    from estimators.one_shot.samplers import SAMPLERS
    from estimators.one_shot.training import TrainConfig
    from estimators.one_shot.training import train as run_training

    if sampler not in SAMPLERS:
        fail(f"--sampler: unknown sampler {sampler!r}; available: {', '.join(SAMPLERS)}")
    if min(archs_per_step, epochs, batch_size, channels, cells) < 1 or lr <= 0:
        fail("--archs-per-step, --epochs, --batch-size, --channels, --cells and --lr must be positive")
    config = TrainConfig(sampler=sampler, archs_per_step=archs_per_step, epochs=epochs, batch_size=batch_size,
                         lr=lr, seed=seed, data_root=data_root, C=channels, N=cells)
    with _progress() as bar:
        task = bar.add_task("training", total=None)

        def report(p: dict) -> None:
            bar.update(task, total=p["steps"], completed=p["step"],
                       description=f"epoch {p['epoch']}/{epochs} loss {p['loss']:.3f}")

        try:
            manifest = run_training(config, out_dir, resume=resume, progress=report)
        except ValueError as exc:
            fail(str(exc))
    last = manifest["history"][-1]
    out.print(f"checkpoint {out_dir} (sha256 {manifest['sha256'][:16]}…): epoch {last['epoch']}, "
              f"train loss {last['train_loss']:.3f}, validation loss {last['val_loss']:.3f}")


@app.command("eval")
def evaluate(
    checkpoint: Annotated[Path, typer.Option("--checkpoint", help="checkpoint folder")],
    sample: Annotated[int, typer.Option("--sample", help="NB201 cells to evaluate")] = 100,
    seed: Annotated[int, typer.Option()] = 0,
    truth: Annotated[str, typer.Option(help="ground-truth column")] = "cifar10_test",
    batches: Annotated[int, typer.Option(help="validation batches of 100 images (at most 5)")] = 5,
    bn_mode: Annotated[str, typer.Option("--bn-mode", help="train (batch statistics) or eval")] = "train",
    output: Annotated[Path | None, typer.Option("--out", help="write the report as JSON")] = None,
) -> None:
    """Evaluate sampled cells with the supernet and rank oneshot_acc / oneshot_loss against ground truth."""
    from estimators.one_shot.training import evaluate_arch, fixed_batches, load_checkpoint, load_dataset, split

    if not (checkpoint / "manifest.json").is_file():
        fail(f"{checkpoint}: not a checkpoint folder (no manifest.json)")
    if not 1 <= batches <= 5 or bn_mode not in ("train", "eval") or sample < 2:
        fail("--batches must be 1..5, --bn-mode train or eval, --sample at least 2")
    try:
        gt = resolve_truth("nb201", truth)
        supernet, manifest = load_checkpoint(checkpoint)
    except (TruthError, ValueError) as exc:
        fail(str(exc))
    space = get_space("nb201")
    archs = space.sample(sample, seed)
    _, val = split(load_dataset(manifest["dataset"], "train", manifest["train_config"].get("data_root")))
    val_batches = fixed_batches(val, 100, batches, seed=0)
    scores = []
    with _progress() as bar:
        task = bar.add_task("evaluating", total=len(archs))
        for arch in archs:
            scores.append(evaluate_arch(supernet, arch, val_batches, bn_mode))
            bar.advance(task)
    ids = [space.canonical_key(a) + space.to_string(a) for a in archs]
    values = [gt.get(a) for a in archs]
    report = {name: ranking_report([s[name] for s in scores], values, ids) for name in ("oneshot_acc", "oneshot_loss")}
    for name, r in report.items():
        out.print(f"{name}: Kendall τ {r['kendall_tau']:.3f}, Spearman {r['spearman']:.3f}, "
                  f"P@top5% {r['p_at_top'].get('0.05', float('nan')):.3f} over {r['n']} cells vs {truth}")
    if output:
        output.write_text(json.dumps({"checkpoint": manifest, "criteria": report,
                                      "archs": [space.to_string(a) for a in archs], "scores": scores}, indent=1))
        err.print(f"report written to {output}")
