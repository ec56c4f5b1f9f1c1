"""`archscore evaluate` and `archscore demo`: how well estimators rank architectures against ground truth."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from archscore.estimators.cli.console import UsageError, device_option, err, fail, out, progress
from archscore.estimators.cli.options import (
    DeisoOpt,
    DeviceOpt,
    EstOpt,
    FileOpt,
    JobsOpt,
    OptionValues,
    SampleOpt,
    SeedOpt,
    SpaceOpt,
    given,
    protocol_options,
)
from archscore.estimators.cli.prepare import check_data, prepare, select_archs
from archscore.estimators.spaces import DEFAULT_SPACE, get_space
from archscore.estimators.truth import TruthError, resolve_truth


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.3f}"


def print_report(report: dict) -> None:
    crit, published = report["criteria"], report["published_criteria"]
    table = Table(
        title=f"{report['space']}: {report['n']} architectures vs {report['truth']['column']} "
        f"(batch {report['protocol']['batch_size']} x {report['protocol']['num_batches']}, "
        f"seed {report['protocol']['seed']})"
    )
    for col in ("estimator", "n", "Kendall τ", "Spearman", "Pearson", "P@top5%", "P@top50%", "BR@1%", "WR@1%", "nDCG"):
        table.add_column(col, justify="left" if col == "estimator" else "right")
    if published:
        table.add_column("published τ", justify="right")
        table.add_column("Δτ", justify="right")
    for name, r in crit.items():
        row = [
            name,
            str(r["n_scored"]),
            _fmt(r["kendall_tau"]),
            _fmt(r["spearman"]),
            _fmt(r["pearson"]),
            _fmt(r["p_at_top"].get("0.05")),
            _fmt(r["p_at_top"].get("0.5")),
            _fmt(r["br_at"].get("0.01")),
            _fmt(r["wr_at"].get("0.01")),
            _fmt(r["ndcg"]),
        ]
        if published:
            p = published.get(name, {}).get("kendall_tau")
            delta = None if p is None or r["kendall_tau"] is None else r["kendall_tau"] - p
            row += [_fmt(p), "-" if delta is None else f"{delta:+.3f}"]
        table.add_row(*row)
    out.print(table)
    out.print(f"scored in {report['seconds']:.1f} s")


@protocol_options
def evaluate(
    space: SpaceOpt = DEFAULT_SPACE,
    estimators: EstOpt = "all",
    truth: Annotated[
        str | None,
        typer.Option(
            "--truth",
            "--truth-file",
            help="ground-truth column, or a table path[:column]: CSV, JSON or NDS "
            "records (column min_test_top1, the default, or test_ep_top1: accuracy = 100 - that error); "
            "default: the space's first column",
        ),
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
    protocol: OptionValues | None = None,
    jobs: JobsOpt = 0,
    device: DeviceOpt = "auto",
) -> None:
    """Score architectures and print the ranking-quality table of each estimator against ground truth."""
    from archscore.estimators.evaluation import evaluate as run_evaluation

    try:
        sp, names, built = prepare(space, estimators, output, jobs, given(protocol))
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
        archs = select_archs(sp, file, sample, seed, deiso, enumerate_all, from_published)
        check_data(built)
        if sum(gt.get(a) is not None for a in archs) < 2:
            raise UsageError(f"fewer than 2 of the {len(archs)} architectures have ground truth in {gt.column!r}")
    except UsageError as exc:
        fail(str(exc))
    from archscore.estimators.scoring import default_jobs

    jobs = jobs or default_jobs(len(archs))
    resolved = device_option(device)
    with progress() as bar:
        task = bar.add_task("scoring", total=len(archs))
        try:
            report = run_evaluation(
                archs,
                sp.name,
                names,
                built,
                gt,
                jobs,
                lambda done, total: bar.update(task, completed=done),
                resolved,
            )
        except ValueError as exc:
            fail(str(exc))
    print_report(report)
    if output:
        output.write_text(json.dumps(report, indent=1))
        out.print(f"report written to {output}")


def demo(
    sample: Annotated[int, typer.Option("--sample")] = 40,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    device: DeviceOpt = "auto",
) -> None:
    """Score a sample of the default space (NAS-Bench-201) with every estimator and print the ranking table."""
    space = get_space(DEFAULT_SPACE)
    evaluate(
        space=space.name,
        estimators="all",
        truth=space.ground_truth_columns[0],
        file=None,
        sample=sample,
        seed=seed,
        deiso=False,
        enumerate_all=False,
        from_published=False,
        output=None,
        protocol=protocol_options.values(),
        jobs=0,
        device=device,
    )
