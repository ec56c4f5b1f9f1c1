"""`archscore predictor fit | eval | list`: few-shot predictors from the command line
(archscore.Predictor; the trees and their file: archscore.estimators.predictor)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from archscore.estimators.cli.console import UsageError, device_option, err, fail, out, progress
from archscore.estimators.cli.options import (
    DeviceOpt,
    JobsOpt,
    OptionValues,
    SpaceOpt,
    SupernetOpt,
    given,
    oneshot_options,
    protocol_options,
)
from archscore.estimators.cli.prepare import check_data, oneshot_settings, select_archs, space_named, supernet_at_hand
from archscore.estimators.predictor import (
    DEFAULT_ESTIMATORS,
    MIN_TRAIN,
    MODEL_FILE,
    PredictorError,
    PredictorModel,
    default_estimators,
)
from archscore.estimators.spaces import DEFAULT_SPACE
from archscore.estimators.truth import TruthError, resolve_truth

app = typer.Typer(
    help="Fit and evaluate few-shot accuracy predictors (trees on zero-shot and one-shot scores).",
    no_args_is_help=True,
)

DEFAULT_DIR = Path(".archscore/predictors")

FeaturesOpt = Annotated[
    str | None,
    typer.Option(
        "--estimators",
        "-e",
        help="comma-separated estimators whose scores are features: zero-shot ones, and oneshot_acc / "
        "oneshot_loss of the --supernet checkpoint; default: " + ",".join(DEFAULT_ESTIMATORS) + ", and "
        "oneshot_acc,oneshot_loss where the space has a supernet (--supernet, else the newest complete one, "
        "else the built-in one)",
    ),
]
PublishedOpt = Annotated[
    bool,
    typer.Option(
        "--from-published", help="sample among the cells with published scores (NB101, NB301: those with labels)"
    ),
]
ScoresOpt = Annotated[
    Path | None,
    typer.Option("--scores", help="a JSON-lines score file (archscore score --out) read first and appended to"),
]


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.3f}"


@app.command()
@oneshot_options
@protocol_options
def fit(
    out_dir: Annotated[Path, typer.Option("--out", help="the predictor's folder (predictor.json is written there)")],
    space: SpaceOpt = DEFAULT_SPACE,
    truth: Annotated[
        str | None, typer.Option("--truth", help="ground-truth column or table path[:column] (default: the first)")
    ] = None,
    train: Annotated[int, typer.Option("--train", help="labelled architectures: a sample of this size", min=1)] = 100,
    seed: Annotated[int, typer.Option("--seed", help="seed of the training sample and of the trees")] = 0,
    estimators: FeaturesOpt = None,
    no_encoding: Annotated[bool, typer.Option("--no-encoding", help="leave out the space's encoding features")] = False,
    prior: Annotated[
        str,
        typer.Option(
            "--prior",
            help="the training-free ensemble the predictions lean on while labels are few (its members join the "
            "estimators): auto (the space's built-in one), none, or ensemble:NAME",
        ),
    ] = "auto",
    from_published: PublishedOpt = False,
    scores: ScoresOpt = None,
    protocol: OptionValues | None = None,
    supernet: SupernetOpt = None,
    oneshot: OptionValues | None = None,
    jobs: JobsOpt = 1,
    device: DeviceOpt = "auto",
) -> None:
    """Score a sample of labelled architectures and fit a predictor to their ground truth."""
    from archscore.estimators.protocol import Protocol
    from archscore.predictors import Predictor

    try:
        sp = space_named(space)
        if estimators is None:
            names = list(default_estimators(supernet is not None or supernet_at_hand(sp)))
        else:
            names = [n.strip() for n in estimators.split(",") if n.strip()]
        settings = oneshot_settings(sp, names, given(oneshot), supernet)
        built = given(protocol).build(Protocol, {"oneshot": "--supernet"}, oneshot=settings)
        check_data(built)
        try:
            column = truth or (sp.ground_truth_columns[0] if sp.ground_truth_columns else None)
            if column is None:
                raise UsageError(f"{sp.name} has no built-in ground truth; give --truth path[:column]")
            table = resolve_truth(sp.name, column)
        except TruthError as exc:
            raise UsageError(f"--truth: {exc}") from None
        sample = select_archs(sp, None, train, seed, False, False, from_published)
        archs = [a for a in sample if table.get(a) is not None]
        if len(archs) < MIN_TRAIN:
            raise UsageError(f"--train {train}: {len(archs)} have {column} values; at least {MIN_TRAIN} are needed")
        try:
            predictor = Predictor(sp.name, names, column, built, seed, not no_encoding, scores, jobs=jobs, prior=prior)
        except PredictorError as exc:
            raise UsageError(str(exc)) from None
    except UsageError as exc:
        fail(str(exc))
    predictor.device = device_option(device)
    with progress() as bar:
        task = bar.add_task("scoring the training set", total=len(archs))
        predictor.progress = lambda done, total: bar.update(task, completed=done, total=total)
        try:
            predictor.fit([sp.to_json(a) for a in archs])
        except PredictorError as exc:
            fail(str(exc))
    path = predictor.save(out_dir)
    model = predictor.model
    assert model is not None
    used = model.protocol.get("oneshot")
    of_supernet = f" (one-shot ones of supernet {used['supernet'][:16]}…)" if used else ""
    out.print(
        f"fitted on {len(model.train)} {sp.name} architectures ({column}, seed {seed}): "
        f"{len(model.estimators)} scores{of_supernet} + {len(model.encoding)} encoding features, prior "
        f"{', '.join(model.prior) or 'none'}; written to {path}\nscores: {', '.join(model.estimators)}"
    )


@app.command("eval")
def evaluate(
    directory: Annotated[Path, typer.Argument(help="the predictor's folder (or its predictor.json)")],
    test: Annotated[int, typer.Option("--test", help="test architectures: a sample of this size", min=2)] = 1000,
    seed: Annotated[int, typer.Option("--seed", help="seed of the test sample")] = 1,
    truth: Annotated[str | None, typer.Option("--truth", help="ground truth (default: the predictor's)")] = None,
    from_published: PublishedOpt = False,
    scores: ScoresOpt = None,
    output: Annotated[Path | None, typer.Option("--out", "-o", help="write the report as JSON")] = None,
    jobs: JobsOpt = 1,
    device: DeviceOpt = "auto",
) -> None:
    """Rank a test sample (the predictor's training architectures left out) and print how well the
    predictor and each of its estimators rank it against ground truth."""
    from archscore.estimators.ranking import ranking_report
    from archscore.predictors import Predictor

    try:
        try:
            model = PredictorModel.load(directory)
            sp = space_named(model.space)
            model.check_space(sp)
        except (PredictorError, ValueError) as exc:
            raise UsageError(str(exc)) from None
        column = truth or model.truth
        try:
            table = resolve_truth(sp.name, column)
        except TruthError as exc:
            raise UsageError(f"--truth: {exc}" if truth else f"the predictor's truth {column!r}: {exc}") from None
        trained = {sp.canonical_key(sp.parse(a)) for a in model.train}
        sample = select_archs(sp, None, test, seed, False, False, from_published)
        archs = [a for a in sample if sp.canonical_key(a) not in trained and table.get(a) is not None]
        if len(archs) < 2:
            raise UsageError(f"fewer than 2 test architectures outside the training set have {column} values")
    except UsageError as exc:
        fail(str(exc))
    resolved = device_option(device)
    with progress() as bar:
        task = bar.add_task("scoring the test set", total=len(archs))
        predictor = Predictor.load(
            directory,
            scores_file=scores,
            device=resolved,
            jobs=jobs,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
        rows = predictor.scores(archs)
    predicted = model.predict(sp, archs, rows)
    labels = [table.get(a) for a in archs]
    keys = [sp.canonical_key(a) for a in archs]
    criteria = {f"predictor (N={len(model.train)})": ranking_report(predicted, labels, keys)}
    for name in model.estimators:
        criteria[name] = ranking_report([r.get(name) for r in rows], labels, keys)
    title = (
        f"{sp.name}: {len(archs)} test architectures (sample {test}, seed {seed}, training set left out) vs {column}"
    )
    result = Table(title=title)
    for col in ("ranker", "n", "Kendall τ", "Spearman", "P@top5%", "BR@1%", "nDCG"):
        result.add_column(col, justify="left" if col == "ranker" else "right")
    for name, r in criteria.items():
        result.add_row(
            name,
            str(r["n_scored"]),
            _fmt(r["kendall_tau"]),
            _fmt(r["spearman"]),
            _fmt(r["p_at_top"].get("0.05")),
            _fmt(r["br_at"].get("0.01")),
            _fmt(r["ndcg"]),
        )
    out.print(result)
    if output:
        report = {"space": sp.name, "truth": column, "test": test, "seed": seed, "n": len(archs), "criteria": criteria}
        output.write_text(json.dumps(report, indent=1))
        out.print(f"report written to {output}")


@app.command("list")
def list_command(
    directory: Annotated[Path, typer.Option("--dir", help="folder holding predictor folders")] = DEFAULT_DIR,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """The predictors saved in the folders under a directory."""
    found: list[dict[str, Any]] = []
    for file in sorted(directory.glob(f"*/{MODEL_FILE}")):
        try:
            model = PredictorModel.load(file)
        except (PredictorError, ValueError) as exc:
            err.print(f"skipped {file}: {str(exc).splitlines()[0]}")
            continue
        found.append(
            {
                "name": file.parent.name,
                "space": model.space,
                "truth": model.truth,
                "train": len(model.train),
                "seed": model.seed,
                "estimators": list(model.estimators),
                "encoding_features": len(model.encoding),
                "library": model.library,
            }
        )
    if as_json:
        out.print_json(data=found)
        return
    if not found:
        err.print(f"no predictors in {directory}")
        return
    table = Table("name", "space", "truth", "train", "seed", "estimators", "encoding", "library")
    for p in found:
        table.add_row(
            p["name"],
            p["space"],
            p["truth"],
            str(p["train"]),
            str(p["seed"]),
            ",".join(p["estimators"]),
            str(p["encoding_features"]),
            p["library"],
        )
    out.print(table)
