"""`archscore supernet train | eval | average | list`: the one-shot estimator from the command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from archscore.estimators.cli import DeviceOpt, _progress, device_option, err, fail, out
from archscore.estimators.one_shot.registry import default_supernet_dir
from archscore.estimators.ranking import ranking_report
from archscore.estimators.spaces import DEFAULT_SPACE, get_space
from archscore.estimators.truth import TruthError, resolve_truth

app = typer.Typer(help="Train and evaluate weight-sharing supernets (one-shot estimators).", no_args_is_help=True)

DEFAULT_DIR = default_supernet_dir()


def _is_checkpoint(folder: Path) -> None:
    if not (folder / "manifest.json").is_file():
        fail(f"{folder}: not a checkpoint folder (no manifest.json)")


@app.command()
def train(
    out_dir: Annotated[Path, typer.Option("--out", help="checkpoint folder (the service serves those under "
                                          "ARCHSCORE_SUPERNET_DIR, default .archscore/supernets)")],
    sampler: Annotated[str, typer.Option(help="uniform, deiso or fair")] = "uniform",
    archs_per_step: Annotated[int, typer.Option("--archs-per-step", help="S architectures per step")] = 1,
    epochs: Annotated[int, typer.Option(help="total epochs (with --resume: continue up to this)")] = 1,
    batch_size: Annotated[int, typer.Option("--batch-size")] = 128,
    steps_per_epoch: Annotated[int | None, typer.Option("--steps-per-epoch", help="default: one pass over the "
                                                        "training split")] = None,
    lr: Annotated[float, typer.Option()] = 0.05,
    patience: Annotated[int, typer.Option(help="plateau: epochs without improvement before the LR is halved")] = 3,
    schedule: Annotated[str, typer.Option(help="plateau (halve the LR on a plateau) or cosine (anneal it per step "
                                          "to 0 at --epochs)")] = "plateau",
    augment: Annotated[bool, typer.Option("--augment/--no-augment", help="random crops and flips")] = True,
    space: Annotated[str, typer.Option(help="search space (those with a supernet: archscore spaces)")] = DEFAULT_SPACE,
    network: Annotated[list[str] | None, typer.Option("--network", help="a supernet setting KEY=VALUE over the "
                                                      "space's defaults, e.g. --network C=8 (repeatable)")] = None,
    seed: Annotated[int, typer.Option()] = 0,
    data_root: Annotated[str | None, typer.Option("--data-root", help="full CIFAR-10 python batches")] = None,
    device: DeviceOpt = "auto",
    keep_snapshots: Annotated[int, typer.Option("--keep-snapshots", help="keep the weights of the last K epochs in "
                                                "OUT/snapshots/ (to average them: archscore supernet average)")] = 0,
    resume: Annotated[bool, typer.Option("--resume", help="continue from the checkpoint in --out")] = False,
) -> None:
    """Train a supernet of a search space on the embedded CIFAR-10 subset (or --data-root) and write a checkpoint."""
    from archscore.estimators.one_shot.registry import CheckpointError
    from archscore.estimators.one_shot.samplers import SAMPLERS
    from archscore.estimators.one_shot.training import SCHEDULES, TrainConfig
    from archscore.estimators.one_shot.training import train as run_training

    if sampler not in SAMPLERS:
        fail(f"--sampler: unknown sampler {sampler!r}; available: {', '.join(SAMPLERS)}")
    if schedule not in SCHEDULES:
        fail(f"--schedule: unknown schedule {schedule!r}; available: {', '.join(SCHEDULES)}")
    if min(archs_per_step, epochs, batch_size, steps_per_epoch or 1) < 1 or lr <= 0 or min(patience, keep_snapshots) < 0:
        fail("--archs-per-step, --epochs, --batch-size, --steps-per-epoch and --lr must be positive")
    settings = _network_settings(space, network or [])
    device = device_option(device)
    config = TrainConfig(sampler=sampler, archs_per_step=archs_per_step, epochs=epochs, batch_size=batch_size,
                         lr=lr, patience=patience, schedule=schedule, augment=augment, seed=seed, data_root=data_root,
                         space=get_space(space).name, network=settings, keep_snapshots=keep_snapshots,
                         steps_per_epoch=steps_per_epoch)
    with _progress() as bar:
        task = bar.add_task("training", total=None)

        def report(p: dict) -> None:
            bar.update(task, total=p["steps"], completed=p["step"],
                       description=f"epoch {p['epoch']}/{p['epochs']} loss {p['loss']:.3f}")

        try:
            manifest = run_training(config, out_dir, resume=resume, progress=report, device=device)
        except (CheckpointError, ValueError) as exc:
            fail(str(exc))
    last = manifest["history"][-1]
    out.print(f"checkpoint {out_dir} (sha256 {manifest['sha256'][:16]}…): epoch {last['epoch']}, "
              f"train loss {last['train_loss']:.3f}, validation loss {last['val_loss']:.3f}, lr {last['lr']:.4g}")


def _trained_sample(space, supernet, n: int, seed: int) -> list:
    """n architectures drawn from the space (spaces that only ship a subset of ground truth: from the
    published architectures), less those the supernet does not cover (said on stderr)."""
    import random

    from archscore.estimators.spaces.base import ENUMERATE, PUBLISHED

    if space.has(ENUMERATE) or not space.has(PUBLISHED):
        archs = space.sample(n, seed)
    else:
        published = space.published_archs()
        archs = random.Random(seed).sample(published, min(n, len(published)))
    covered = [a for a in archs if supernet.covers(a)]
    if len(covered) < len(archs):
        err.print(f"{len(archs) - len(covered)} of {len(archs)} architectures are outside this supernet; left out")
    if len(covered) < 2:
        fail("--sample: fewer than two architectures within this supernet")
    return covered


def _network_settings(space_name: str, pairs: list[str]) -> dict[str, int]:
    """--network KEY=VALUE options, checked by the space (exit 2 naming the setting)."""
    from archscore.estimators.spaces.base import SUPERNET, NetworkConfigError

    try:
        space = get_space(space_name)
    except KeyError as exc:
        fail(f"--space: {exc.args[0]}")
    if not space.has(SUPERNET):
        fail(f"--space: search space {space.name} has no supernet")
    settings: dict[str, int] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not value.strip().lstrip("-").isdigit():
            fail(f"--network: {pair!r} is not KEY=INTEGER (settings of {space.name}: "
                 f"{', '.join(space.supernet_network)})")
        settings[key.strip()] = int(value)
    try:
        space.supernet_config(settings)
    except NetworkConfigError as exc:
        fail(f"--network {exc}")
    return settings


@app.command("eval")
def evaluate(
    checkpoint: Annotated[Path, typer.Option("--checkpoint", help="checkpoint folder")],
    sample: Annotated[int, typer.Option("--sample", help="architectures of the checkpoint's space to evaluate")] = 100,
    seed: Annotated[int, typer.Option()] = 0,
    truth: Annotated[str | None, typer.Option(help="ground-truth column (default: the space's first)")] = None,
    batches: Annotated[int, typer.Option(help="batches of 100 images (at most 5 validation, 15 held-out)")] = 5,
    images: Annotated[str, typer.Option(help="validation (the 500-image split) or held_out (it and the 1,000 "
                                              "test images)")] = "validation",
    bn_mode: Annotated[str, typer.Option("--bn-mode", help="train (batch statistics) or recalibrate")] = "train",
    post_deiso: Annotated[bool, typer.Option("--post-deiso", help="average over each isomorphism class")] = False,
    output: Annotated[Path | None, typer.Option("--out", help="write the report as JSON")] = None,
    device: DeviceOpt = "auto",
) -> None:
    """Evaluate sampled cells with the supernet and rank oneshot_acc / oneshot_loss against ground truth."""
    from archscore.estimators.one_shot.checkpoints import load_checkpoint
    from archscore.estimators.one_shot.evaluation import BN_MODES, calibration_batches, score_arch, validation_batches
    from archscore.estimators.one_shot.registry import CheckpointError
    from archscore.estimators.protocol import EVALUATION_IMAGES

    if images not in EVALUATION_IMAGES:
        fail(f"--images: use one of {', '.join(EVALUATION_IMAGES)}, not {images!r}")
    most = EVALUATION_IMAGES[images] // 100
    if not 1 <= batches <= most or bn_mode not in BN_MODES or sample < 2:
        fail(f"--batches must be 1..{most} with --images {images}, --bn-mode one of {', '.join(BN_MODES)}, "
             "--sample at least 2")
    _is_checkpoint(checkpoint)
    device = device_option(device)
    try:
        supernet, manifest = load_checkpoint(checkpoint, device)
        space = get_space(manifest.get("space", DEFAULT_SPACE))
        truth = truth or (space.ground_truth_columns or ("",))[0]
        gt = resolve_truth(space.name, truth)
    except (TruthError, CheckpointError) as exc:
        fail(str(exc))
    archs = _trained_sample(space, supernet, sample, seed)
    val_batches = validation_batches(manifest, 100, batches, images=images, device=device)
    calibration = calibration_batches(manifest, device=device) if bn_mode == "recalibrate" else None
    scores = []
    with _progress() as bar:
        task = bar.add_task("evaluating", total=len(archs))
        for arch in archs:
            scores.append(score_arch(supernet, arch, val_batches, bn_mode, post_deiso, calibration))
            bar.advance(task)
    ids = [space.canonical_key(a) + space.to_string(a) for a in archs]
    values = [gt.get(a) for a in archs]
    report = {name: ranking_report([s[name] for s in scores], values, ids) for name in ("oneshot_acc", "oneshot_loss")}
    for name, r in report.items():
        out.print(f"{name}: Kendall τ {r['kendall_tau']:.3f}, Spearman {r['spearman']:.3f}, "
                  f"P@top5% {r['p_at_top'].get('0.05', float('nan')):.3f} over {r['n']} cells vs {truth}")
    if output:
        settings = {"images": images, "batches": batches, "batch_size": 100, "bn_mode": bn_mode,
                    "post_deiso": post_deiso, "device": device}
        output.write_text(json.dumps({"checkpoint": manifest, "evaluation": settings, "criteria": report,
                                      "archs": [space.to_string(a) for a in archs], "scores": scores}, indent=1))
        err.print(f"report written to {output}")


@app.command()
def average(
    checkpoints: Annotated[list[Path], typer.Argument(help="checkpoint folders of the same network")],
    out_dir: Annotated[Path, typer.Option("--out", help="folder for the averaged checkpoint")],
) -> None:
    """Average the weights of several checkpoints (e.g. the last epochs of one run) into a new one."""
    from archscore.estimators.one_shot.checkpoints import average_checkpoints
    from archscore.estimators.one_shot.registry import CheckpointError

    for folder in checkpoints:
        _is_checkpoint(folder)
    if (out_dir / "manifest.json").exists():
        fail(f"--out: {out_dir} already holds a checkpoint")
    try:
        manifest = average_checkpoints(checkpoints, out_dir)
    except CheckpointError as exc:
        fail(str(exc))
    out.print(f"checkpoint {out_dir} (sha256 {manifest['sha256'][:16]}…): average of {len(checkpoints)}")


@app.command("list")
def list_command(
    directory: Annotated[Path, typer.Option("--dir", help="folder holding checkpoint folders")] = DEFAULT_DIR,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Checkpoints under a folder (the service's ARCHSCORE_SUPERNET_DIR by default), newest first."""
    from rich.table import Table

    from archscore.estimators.one_shot.registry import list_checkpoints

    found = list_checkpoints(directory)
    if as_json:
        out.print_json(data=found)
        return
    if not found:
        err.print(f"no checkpoints in {directory}")
        return
    table = Table("name", "space", "sha256", "sampler", "epochs", "network", "train loss")
    for c in found:
        epochs = f"{c['epochs']}/{c['planned_epochs']}" + ("" if c["complete"] else " (training)")
        loss = "-" if c["train_loss"] is None else f"{c['train_loss']:.3f}"
        network = ", ".join(f"{k}={v}" for k, v in (c["network"] or {}).items() if k not in ("num_classes", "affine"))
        table.add_row(c["name"], c["space"] or DEFAULT_SPACE, c["sha256"][:16], str(c["sampler"]), epochs, network, loss)
    out.print(table)
