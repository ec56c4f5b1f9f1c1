"""The ``archscore`` command line: list spaces and estimators, score architectures, evaluate estimators.

Bad input exits with status 2 and a one-line reason on stderr.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from archscore.estimators.device import DEVICE_HELP
from archscore.estimators.protocol import Protocol
from archscore.estimators.spaces import DEFAULT_SPACE, EncodingError, get_space, list_spaces
from archscore.estimators.spaces.base import SUPERNET, Arch, SearchSpace, decode_text_encoding
from archscore.estimators.truth import TruthError, resolve_truth
from archscore.estimators.zero_shot.manifest import ZERO_SHOT, resolve_estimators

app = typer.Typer(help="Score neural architectures with efficient performance estimators.", no_args_is_help=True)
out = Console(width=None if sys.stdout.isatty() else 120)
err = Console(stderr=True)


class UsageError(Exception):
    """Bad input from the user: reported in one line, exit status 2."""


def fail(message: str) -> None:
    err.print(f"error: {message}", markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(2)


def _space(name: str) -> SearchSpace:
    try:
        return get_space(name)
    except KeyError as exc:
        raise UsageError(exc.args[0]) from None


def _estimators(text: str, one_shot: bool = False) -> list[str]:
    """Zero-shot estimator names (and one-shot ones where the command takes them), in the order given."""
    from archscore.estimators.catalog import is_one_shot

    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise UsageError("--estimators: give estimator names separated by commas, or 'all'")
    zero_shot = [n for n in names if not (one_shot and is_one_shot(n))]
    try:
        resolved = resolve_estimators(zero_shot) if zero_shot else []
    except KeyError as exc:
        raise UsageError(exc.args[0]) from None
    return resolved + [n for n in dict.fromkeys(names) if one_shot and is_one_shot(n)]


# Protocol field -> the option that sets it
PROTOCOL_OPTIONS = {
    "dataset": "--dataset", "data_root": "--data-root", "batch_size": "--batch-size", "num_batches": "--batches",
    "seed": "--init-seed", "bn_mode": "--bn-mode", "data_seed": "--data-seed", "inputs": "--inputs",
}


def _protocol(**fields) -> Protocol:
    try:
        return Protocol(**fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise UsageError(f"{PROTOCOL_OPTIONS.get(str(first['loc'][0]), first['loc'][0])}: {first['msg']}") from None


def _prepare(space: str, estimators: str, output: Path | None, jobs: int, weights: str | None = None,
             one_shot: bool = False, supernet: str | None = None, images: str = "validation", **protocol_fields):
    """Validate what `score` and `evaluate` share: space, estimators, protocol, output, jobs. With
    ``one_shot``, one-shot estimators are taken too, from the checkpoint ``supernet`` (default: the
    newest complete one) on ``images``."""
    from archscore.estimators.catalog import is_one_shot
    from archscore.estimators.protocol import EVALUATION_IMAGES, OneShotSettings

    sp = _space(space)
    names = _estimators(estimators, one_shot)
    oneshot = None
    if any(is_one_shot(n) for n in names):
        if images not in EVALUATION_IMAGES:
            raise UsageError(f"--images: use one of {', '.join(EVALUATION_IMAGES)}, not {images!r}")
        oneshot = OneShotSettings(supernet=_checkpoint_sha256(sp, supernet, "--supernet"), images=images)
    protocol = _protocol(weights=_weights(sp, weights), oneshot=oneshot, **protocol_fields)
    _check_output(output)
    if jobs < 0:
        raise UsageError("--jobs must be 0 (automatic) or more")
    return sp, names, protocol


def _weights(space: SearchSpace, ref: str | None) -> str | None:
    """The sha256 of the checkpoint --weights names (in the service's supernet folder)."""
    if ref is not None and not space.supernet_transfers_weights:
        raise UsageError(f"--weights: search space {space.name} has no supernet whose weights its standalone "
                         "networks can take")
    return None if ref is None else _checkpoint_sha256(space, ref, "--weights")


def _checkpoint_sha256(space: SearchSpace, ref: str | None, option: str) -> str:
    """The sha256 of the checkpoint ``ref`` names in the service's supernet folder (None: the newest
    complete one), a supernet of ``space``."""
    from archscore.estimators.one_shot.registry import CheckpointError, default_supernet_dir, resolve

    if not space.has(SUPERNET):
        raise UsageError(f"{option}: search space {space.name} has no supernet")
    try:
        checkpoint = resolve(default_supernet_dir(), ref, space.name)
    except CheckpointError as exc:
        raise UsageError(f"{option}: {exc}") from None
    if (checkpoint["space"] or DEFAULT_SPACE) != space.name:
        raise UsageError(f"{option}: {checkpoint['name']!r} is a supernet of {checkpoint['space']}, not of {space.name}")
    return checkpoint["sha256"]


def _check_output(path: Path | None) -> None:
    """Fail before any scoring when the output cannot be written."""
    if path is None:
        return
    if path.is_dir():
        raise UsageError(f"{path}: is a folder, not a file")
    if not path.parent.is_dir():
        raise UsageError(f"{path}: folder {path.parent} does not exist")


def _read_archs(space: SearchSpace, source: Path | None) -> list[Arch]:
    """One encoding per line (blank lines and lines starting with # skipped), from a file or stdin."""
    name = str(source) if source and str(source) != "-" else "stdin"
    if source and str(source) != "-":
        if not source.exists():
            raise UsageError(f"{source}: no such file")
        if not source.is_file():
            raise UsageError(f"{source}: not a file")
        try:
            lines = source.read_text().splitlines()
        except (UnicodeDecodeError, OSError) as exc:
            raise UsageError(f"{source}: cannot be read as text ({exc.__class__.__name__})") from None
    else:
        lines = sys.stdin.read().splitlines()
    archs = []
    for number, line in enumerate(lines, start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            archs.append(space.parse(decode_text_encoding(line)))
        except EncodingError as exc:
            raise UsageError(f"{name} line {number}: {exc}") from None
    if not archs:
        raise UsageError(f"{name}: no architectures given")
    return archs


def _select_archs(
    space: SearchSpace, source: Path | None, sample: int | None, seed: int, deiso: bool, enumerate_all: bool,
    from_published: bool,
) -> list[Arch]:
    chosen = sum(x for x in (source is not None, sample is not None, enumerate_all))
    if chosen > 1:
        raise UsageError("give only one of --file, --sample and --enumerate")
    if enumerate_all:
        return list(space.enumerate())
    if sample is not None:
        if sample < 1:
            raise UsageError("--sample must be at least 1")
        if from_published:
            import random

            from archscore.estimators.evaluation import published_cells

            pool = published_cells(space.name)
            if not pool:
                raise UsageError(f"no published scores for space {space.name}")
            if sample > len(pool):
                raise UsageError(f"--sample {sample} exceeds the {len(pool)} cells with published scores")
            return random.Random(seed).sample(pool, sample)
        try:
            return space.sample(sample, seed, deisomorphic=deiso)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    return _read_archs(space, source)


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        TextColumn("left"), TimeRemainingColumn(), console=err, transient=False,
    )


def device_option(name: str) -> str:
    """The device ``--device`` names, resolved (auto: CUDA when available); exit 2 when it is unknown
    or absent here."""
    from archscore.estimators.device import DeviceError, resolve_device

    try:
        return resolve_device(name)
    except DeviceError as exc:
        fail(f"--device: {exc}")
        raise  # unreachable: fail exits


def _run_scoring(archs, space, names, protocol, jobs, device):
    from archscore.estimators.zero_shot.many import default_jobs, score_many

    jobs = jobs or default_jobs(len(archs))
    with _progress() as bar:
        task = bar.add_task("scoring", total=len(archs))
        return score_many(archs, space.name, names, protocol, jobs, lambda done, total: bar.update(task, completed=done),
                          supernet_dir=_supernet_dir(protocol), device=device)


def _supernet_dir(protocol: Protocol) -> Path | None:
    from archscore.estimators.one_shot.registry import default_supernet_dir

    return default_supernet_dir() if protocol.weights or protocol.oneshot else None


# Options shared by `score` and `evaluate`.
SpaceOpt = Annotated[str, typer.Option("--space", help="search space")]
EstOpt = Annotated[str, typer.Option("--estimators", "-e", help="comma-separated names, or 'all'")]
FileOpt = Annotated[Path | None, typer.Option("--file", "-f", help="encodings, one per line ('-' = stdin)")]
SampleOpt = Annotated[int | None, typer.Option("--sample", help="score N architectures sampled from the space")]
SeedOpt = Annotated[int, typer.Option("--seed", help="seed of --sample")]
DeisoOpt = Annotated[bool, typer.Option("--deiso", help="sample uniformly over isomorphism classes")]
DatasetOpt = Annotated[str, typer.Option("--dataset", help="cifar10 or cifar100")]
RootOpt = Annotated[str | None, typer.Option("--data-root", help="folder with the full CIFAR python batches")]
BatchOpt = Annotated[int, typer.Option("--batch-size", help="images per batch")]
BatchesOpt = Annotated[int, typer.Option("--batches", help="number of fixed batches (scores are their mean)")]
InitOpt = Annotated[int, typer.Option("--init-seed", help="seed of the network initialisation")]
BnOpt = Annotated[str, typer.Option("--bn-mode", help="train (batch statistics) or eval")]
DataSeedOpt = Annotated[int, typer.Option("--data-seed", help="seed of the choice of the fixed batches")]
InputsOpt = Annotated[str, typer.Option("--inputs", help="images, shuffled_labels (labels permuted within each "
                                        "batch) or noise (Gaussian images)")]
JobsOpt = Annotated[int, typer.Option("--jobs", "-j", help="worker processes (0: automatic)")]
DeviceOpt = Annotated[str, typer.Option("--device", help=DEVICE_HELP)]
WeightsOpt = Annotated[str | None, typer.Option("--weights", help="a supernet checkpoint (name or sha256 prefix, in "
                                                "ARCHSCORE_SUPERNET_DIR): each network takes its path's weights "
                                                "from it instead of a random init")]


@app.command()
def spaces(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List the search spaces, their encodings and ground-truth columns."""
    info = [get_space(n).describe() for n in list_spaces()]
    if as_json:
        out.print_json(json.dumps(info))
        return
    table = Table("space", "size", "encodings", "ground truth")
    for s in info:
        table.add_row(s["name"], "-" if s["size"] is None else f"{s['size']:,}", ", ".join(s["encodings"]), ", ".join(s["ground_truth_columns"]))
    out.print(table)


@app.command()
def estimators(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List the estimators (name, kind, whether they need data, version). One-shot estimators are
    scored with `archscore supernet eval` or through the service."""
    from archscore.estimators.catalog import ESTIMATORS

    if as_json:
        out.print_json(json.dumps([e.to_dict() for e in ESTIMATORS.values()]))
        return
    table = Table("name", "kind", "data", "version", "unit", "definition")
    for e in ESTIMATORS.values():
        table.add_row(e.name, e.kind, "yes" if e.needs_data else "no", e.version, e.unit, e.description)
    out.print(table)


@app.command()
def score(
    space: SpaceOpt = DEFAULT_SPACE,
    estimators: EstOpt = "all",
    file: FileOpt = None,
    sample: SampleOpt = None,
    seed: SeedOpt = 0,
    deiso: DeisoOpt = False,
    fmt: Annotated[str, typer.Option("--format", help="jsonl or csv")] = "jsonl",
    output: Annotated[Path | None, typer.Option("--out", "-o", help="write here instead of stdout")] = None,
    dataset: DatasetOpt = "cifar10",
    data_root: RootOpt = None,
    batch_size: BatchOpt = 128,
    batches: BatchesOpt = 1,
    init_seed: InitOpt = 20,
    bn_mode: BnOpt = "train",
    data_seed: DataSeedOpt = 20,
    inputs: InputsOpt = "images",
    weights: WeightsOpt = None,
    jobs: JobsOpt = 0,
    device: DeviceOpt = "auto",
) -> None:
    """Score architectures (from --file, stdin, or --sample) with zero-shot estimators."""
    try:
        if fmt not in ("jsonl", "csv"):
            raise UsageError(f"--format must be jsonl or csv, not {fmt!r}")
        sp, names, protocol = _prepare(
            space, estimators, output, jobs, dataset=dataset, data_root=data_root, batch_size=batch_size,
            num_batches=batches, seed=init_seed, bn_mode=bn_mode, data_seed=data_seed, inputs=inputs, weights=weights,
        )
        archs = _select_archs(sp, file, sample, seed, False if file else deiso, False, False)
        _check_data(protocol)
    except UsageError as exc:
        fail(str(exc))
    records = _run_scoring(archs, sp, names, protocol, jobs, device_option(device))
    stream = output.open("w", newline="") if output else sys.stdout
    try:
        if fmt == "jsonl":
            for r in records:
                stream.write(json.dumps({"space": sp.name, "protocol_hash": protocol.hash(), **r}) + "\n")
        else:
            writer = csv.writer(stream)
            writer.writerow(["arch", "canonical_key", *names, "reasons"])
            for r in records:
                values = ("" if r["scores"][n] is None else r["scores"][n] for n in names)
                writer.writerow([r["arch"], r["canonical_key"], *values, json.dumps(r["reasons"]) if r["reasons"] else ""])
    finally:
        if output:
            stream.close()


def _check_data(protocol: Protocol) -> None:
    from archscore.estimators.datasets import DatasetError, load_dataset

    try:
        images = load_dataset(protocol.dataset, "train", protocol.data_root)
    except DatasetError as exc:
        raise UsageError(str(exc)) from None
    needed = protocol.batch_size * protocol.num_batches
    if needed > len(images):
        raise UsageError(f"--batch-size x --batches = {needed} exceeds the {len(images)} training images available")


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.3f}"


def print_report(report: dict) -> None:
    crit, published = report["criteria"], report["published_criteria"]
    table = Table(
        title=f"{report['space']}: {report['n']} architectures vs {report['truth']['column']} "
        f"(batch {report['protocol']['batch_size']} x {report['protocol']['num_batches']}, seed {report['protocol']['seed']})"
    )
    for col in ("estimator", "n", "Kendall τ", "Spearman", "Pearson", "P@top5%", "P@top50%", "BR@1%", "WR@1%"):
        table.add_column(col, justify="left" if col == "estimator" else "right")
    if published:
        table.add_column("published τ", justify="right")
        table.add_column("Δτ", justify="right")
    for name, r in crit.items():
        row = [
            name, str(r["n_scored"]), _fmt(r["kendall_tau"]), _fmt(r["spearman"]), _fmt(r["pearson"]),
            _fmt(r["p_at_top"].get("0.05")), _fmt(r["p_at_top"].get("0.5")),
            _fmt(r["br_at"].get("0.01")), _fmt(r["wr_at"].get("0.01")),
        ]
        if published:
            p = published.get(name, {}).get("kendall_tau")
            delta = None if p is None or r["kendall_tau"] is None else r["kendall_tau"] - p
            row += [_fmt(p), "-" if delta is None else f"{delta:+.3f}"]
        table.add_row(*row)
    out.print(table)
    out.print(f"scored in {report['seconds']:.1f} s")


@app.command()
def evaluate(
    space: SpaceOpt = DEFAULT_SPACE,
    estimators: EstOpt = "all",
    truth: Annotated[
        str | None,
        typer.Option("--truth", "--truth-file", help="ground-truth column, or a table path[:column]: CSV, JSON or NDS "
                     "records (column min_test_top1, the default, or test_ep_top1: accuracy = 100 - that error); "
                     "default: the space's first column"),
    ] = None,
    file: FileOpt = None,
    sample: SampleOpt = None,
    seed: SeedOpt = 0,
    deiso: DeisoOpt = False,
    enumerate_all: Annotated[bool, typer.Option("--enumerate", help="every architecture of the space")] = False,
    from_published: Annotated[
        bool, typer.Option("--from-published", help="sample among cells with published scores and compare with them")
    ] = False,
    output: Annotated[Path | None, typer.Option("--out", "-o", help="write the full report as JSON")] = None,
    dataset: DatasetOpt = "cifar10",
    data_root: RootOpt = None,
    batch_size: BatchOpt = 128,
    batches: BatchesOpt = 1,
    init_seed: InitOpt = 20,
    bn_mode: BnOpt = "train",
    data_seed: DataSeedOpt = 20,
    inputs: InputsOpt = "images",
    jobs: JobsOpt = 0,
    device: DeviceOpt = "auto",
) -> None:
    """Score architectures and print the ranking-quality table of each estimator against ground truth."""
    from archscore.estimators.evaluation import evaluate as run_evaluation

    try:
        sp, names, protocol = _prepare(
            space, estimators, output, jobs, dataset=dataset, data_root=data_root, batch_size=batch_size,
            num_batches=batches, seed=init_seed, bn_mode=bn_mode, data_seed=data_seed, inputs=inputs,
        )
        try:
            if truth is None and not sp.ground_truth_columns:
                raise UsageError(f"{sp.name} has no built-in ground truth; give --truth path[:column]")
            gt = resolve_truth(sp.name, truth or sp.ground_truth_columns[0])
            for reason, count in gt.skipped.items():
                err.print(f"ground truth: left out {count} entries: {reason}")
        except TruthError as exc:
            raise UsageError(str(exc)) from None
        if file is None and sample is None and not enumerate_all:
            raise UsageError("choose the architectures: --sample N, --enumerate or --file")
        archs = _select_archs(sp, file, sample, seed, deiso, enumerate_all, from_published)
        _check_data(protocol)
        if sum(gt.get(a) is not None for a in archs) < 2:
            raise UsageError(f"fewer than 2 of the {len(archs)} architectures have ground truth in {gt.column!r}")
    except UsageError as exc:
        fail(str(exc))
    from archscore.estimators.zero_shot.many import default_jobs

    jobs = jobs or default_jobs(len(archs))
    resolved = device_option(device)
    with _progress() as bar:
        task = bar.add_task("scoring", total=len(archs))
        try:
            report = run_evaluation(
                archs, sp.name, names, protocol, gt, jobs, lambda done, total: bar.update(task, completed=done),
                resolved,
            )
        except ValueError as exc:
            fail(str(exc))
    print_report(report)
    if output:
        output.write_text(json.dumps(report, indent=1))
        out.print(f"report written to {output}")


@app.command()
def demo(
    sample: Annotated[int, typer.Option("--sample")] = 40,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    device: DeviceOpt = "auto",
) -> None:
    """Score a sample of the default space (NAS-Bench-201) with every estimator and print the ranking table."""
    space = get_space(DEFAULT_SPACE)
    evaluate(space=space.name, estimators="all", truth=space.ground_truth_columns[0], file=None, sample=sample, seed=seed, deiso=False,
             enumerate_all=False, from_published=False, output=None, dataset="cifar10", data_root=None,
             batch_size=128, batches=1, init_seed=20, bn_mode="train", data_seed=20, jobs=0, device=device)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
