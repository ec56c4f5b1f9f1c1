"""`archscore supernet train | eval | average | list`: the one-shot estimator from the command line. The
training options are the library's TrainSettings, the evaluation's its OneShotEvaluation
(archscore.estimators.cli.options)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from archscore.estimators.catalog import ONE_SHOT
from archscore.estimators.cli.console import device_option, err, fail, out, progress
from archscore.estimators.cli.options import (
    DeviceOpt,
    OptionValues,
    given,
    supernet_eval_options,
    train_options,
)
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
@train_options
def train(
    out_dir: Annotated[
        Path,
        typer.Option(
            "--out",
            help="checkpoint folder (the service serves those under "
            "ARCHSCORE_SUPERNET_DIR, default .archscore/supernets)",
        ),
    ],
    settings: OptionValues | None = None,
    network: Annotated[
        list[str] | None,
        typer.Option(
            "--network", help="a supernet setting KEY=VALUE over the space's defaults, e.g. --network C=8 (repeatable)"
        ),
    ] = None,
    data_root: Annotated[str | None, typer.Option("--data-root", help="full CIFAR-10 python batches")] = None,
    device: DeviceOpt = "auto",
    resume: Annotated[bool, typer.Option("--resume", help="continue from the checkpoint in --out")] = False,
) -> None:
    """Train a supernet of a search space on the embedded CIFAR-10 subset (or --data-root) and write a checkpoint."""
    from archscore.estimators.one_shot.config import TrainSettings
    from archscore.estimators.one_shot.registry import CheckpointError
    from archscore.estimators.one_shot.training import TrainConfig
    from archscore.estimators.one_shot.training import train as run_training

    settings = given(settings)
    settings.build_or_exit()  # each option's value, before the network's settings are read
    network_settings = _network_settings(settings["space"], network or [])
    device = device_option(device)
    chosen = settings.build_or_exit(TrainSettings, network=network_settings, space=get_space(settings["space"]).name)
    try:
        config = TrainConfig(**chosen.model_dump(), data_root=data_root)
    except ValueError as exc:
        fail(str(exc))
    with progress() as bar:
        task = bar.add_task("training", total=None)

        def report(p: dict) -> None:
            bar.update(
                task,
                total=p["steps"],
                completed=p["step"],
                description=f"epoch {p['epoch']}/{p['epochs']} loss {p['loss']:.3f}",
            )

        try:
            manifest = run_training(config, out_dir, resume=resume, progress=report, device=device)
        except (CheckpointError, ValueError) as exc:
            fail(str(exc))
    last = manifest["history"][-1]
    out.print(
        f"checkpoint {out_dir} (sha256 {manifest['sha256'][:16]}…): epoch {last['epoch']}, "
        f"train loss {last['train_loss']:.3f}, validation loss {last['val_loss']:.3f}, lr {last['lr']:.4g}"
    )


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
            fail(
                f"--network: {pair!r} is not KEY=INTEGER (settings of {space.name}: "
                f"{', '.join(space.supernet_network)})"
            )
        settings[key.strip()] = int(value)
    try:
        space.supernet_config(settings)
    except NetworkConfigError as exc:
        fail(f"--network {exc}")
    return settings


@app.command("eval")
@supernet_eval_options
def evaluate(
    checkpoint: Annotated[Path, typer.Option("--checkpoint", help="checkpoint folder")],
    sample: Annotated[int, typer.Option("--sample", help="architectures of the checkpoint's space to evaluate")] = 100,
    seed: Annotated[int, typer.Option(help="seed of --sample")] = 0,
    truth: Annotated[str | None, typer.Option(help="ground-truth column (default: the space's first)")] = None,
    evaluation: OptionValues | None = None,
    output: Annotated[Path | None, typer.Option("--out", help="write the report as JSON")] = None,
    device: DeviceOpt = "auto",
) -> None:
    """Evaluate sampled cells with the supernet and rank oneshot_acc / oneshot_loss against ground truth
    (scores of the architecture itself unless --post-deiso: this command's default)."""
    from archscore.estimators.one_shot.checkpoints import load_checkpoint
    from archscore.estimators.one_shot.evaluation import BN_MODES, calibration_batches, score_arch, validation_batches
    from archscore.estimators.one_shot.registry import CheckpointError
    from archscore.estimators.protocol import EVALUATION_IMAGES

    evaluation = given(evaluation)
    images, batch_size, batches = evaluation["images"], evaluation["batch_size"], evaluation["num_batches"]
    if images not in EVALUATION_IMAGES:
        fail(f"--images: use one of {', '.join(EVALUATION_IMAGES)}, not {images!r}")
    if batch_size >= 1:
        most = EVALUATION_IMAGES[images] // batch_size
        if not 1 <= batches <= most or evaluation["bn_mode"] not in BN_MODES or sample < 2:
            fail(
                f"--num-batches must be 1..{most} with --images {images} and --batch-size {batch_size}, "
                f"--bn-mode one of {', '.join(BN_MODES)}, --sample at least 2"
            )
    chosen = evaluation.build_or_exit()
    bn_mode, post_deiso = chosen.bn_mode, chosen.post_deiso
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
    val_batches = validation_batches(manifest, batch_size, batches, images=images, device=device)
    calibration = calibration_batches(manifest, device=device) if bn_mode == "recalibrate" else None
    scores = []
    with progress() as bar:
        task = bar.add_task("evaluating", total=len(archs))
        for arch in archs:
            scores.append(score_arch(supernet, arch, val_batches, bn_mode, post_deiso, calibration))
            bar.advance(task)
    ids = [space.canonical_key(a) + space.to_string(a) for a in archs]
    values = [gt.get(a) for a in archs]
    report = {name: ranking_report([s[name] for s in scores], values, ids) for name in ONE_SHOT}
    for name, r in report.items():
        out.print(
            f"{name}: Kendall τ {r['kendall_tau']:.3f}, Spearman {r['spearman']:.3f}, "
            f"P@top5% {r['p_at_top'].get('0.05', float('nan')):.3f} over {r['n']} cells vs {truth}"
        )
    if output:
        settings = {
            "images": images,
            "batches": batches,
            "batch_size": batch_size,
            "bn_mode": bn_mode,
            "post_deiso": post_deiso,
            "device": device,
        }
        output.write_text(
            json.dumps(
                {
                    "checkpoint": manifest,
                    "evaluation": settings,
                    "criteria": report,
                    "archs": [space.to_string(a) for a in archs],
                    "scores": scores,
                },
                indent=1,
            )
        )
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
    """Checkpoints under a folder (the service's ARCHSCORE_SUPERNET_DIR by default), newest first, then those
    built into archscore."""
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
        table.add_row(
            c["name"] + (" (built in)" if c["builtin"] else ""),
            c["space"] or DEFAULT_SPACE,
            c["sha256"][:16],
            str(c["sampler"]),
            epochs,
            network,
            loss,
        )
    out.print(table)
