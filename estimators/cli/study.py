"""`archscore study`: run one of the paper's analyses on architectures of a space with ground truth."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Annotated

import typer

from archscore.estimators.analysis.isomorphism_spread import DEFAULT_MEMBERS, MAX_MEMBERS
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
    SupernetOpt,
    WeightsOpt,
    given,
    oneshot_options,
    protocol_options,
)
from archscore.estimators.cli.prepare import prepare, select_archs, supernet_dir
from archscore.estimators.spaces import DEFAULT_SPACE

# the fields a study's input errors name, as this command's options
CLI_OPTIONS = {
    "protocol.weights": "--weights",
    "protocol.oneshot.supernet": "--supernet",
    "options.validation_batches": "--validation-batches",
    "estimators": "--estimators",
    "options.supernets": "--supernets",
}


@oneshot_options
@protocol_options
def study(
    name: Annotated[
        str | None,
        typer.Argument(
            help="the study, or several comma-separated (they share the "
            "scores; each writes to OUT/NAME); --list shows them"
        ),
    ] = None,
    list_them: Annotated[bool, typer.Option("--list", help="list the studies and exit")] = False,
    space: SpaceOpt = DEFAULT_SPACE,
    estimators: EstOpt = "grad_norm,snip,synflow,jacob_cov,relu_logdet,params,flops",
    truth: Annotated[
        str | None,
        typer.Option(
            "--truth",
            "--truth-file",
            help="ground-truth column or table path[:column]; default: the space's first column",
        ),
    ] = None,
    file: FileOpt = None,
    sample: SampleOpt = None,
    seed: SeedOpt = 0,
    deiso: DeisoOpt = False,
    out_dir: Annotated[Path | None, typer.Option("--out", "-o", help="folder for result.json and the figures")] = None,
    bins: Annotated[int, typer.Option("--bins", help="complexity_bias: bins of equal size")] = 5,
    top: Annotated[int, typer.Option("--top", help="architecture_bias: architectures listed each way")] = 10,
    members: Annotated[
        int, typer.Option("--members", help="isomorphism_spread: members scored per class")
    ] = DEFAULT_MEMBERS,
    protocol: OptionValues | None = None,
    weights: WeightsOpt = None,
    supernet: SupernetOpt = None,
    oneshot: OptionValues | None = None,
    validation_batches: Annotated[
        str,
        typer.Option("--validation-batches", help="validation_size: numbers of validation batches, comma-separated"),
    ] = "1,2,3,5",
    supernets: Annotated[
        str,
        typer.Option(
            "--supernets",
            help="sampler, reduced_sharing: checkpoints to compare, comma-separated names or sha256 prefixes",
        ),
    ] = "",
    jobs: JobsOpt = 0,
    device: DeviceOpt = "auto",
    fmt: Annotated[str, typer.Option("--format", help="figure files: png, pdf or svg")] = "png",
    dpi: Annotated[int, typer.Option("--dpi", help="resolution of PNG figures (50..600)")] = 150,
    record: Annotated[
        bool,
        typer.Option(
            "--record/--no-record",
            help="also keep result.json and PNG figures in ARCHSCORE_DATA_DIR/studies, where the dashboard lists them",
        ),
    ] = True,
) -> None:
    """Run a study (complexity, operation and architecture bias, variance ...): writes result.json and the
    figures (--format png, pdf or svg) to --out, and keeps a copy in ARCHSCORE_DATA_DIR/studies for the
    dashboard (--no-record: not)."""
    from archscore.estimators.analysis import StudyContext, StudyInputError, get_study, list_studies
    from archscore.estimators.analysis.run import local_source, run_study, with_checkpoints
    from archscore.estimators.one_shot.registry import default_supernet_dir
    from archscore.estimators.truth import TruthError, resolve_truth

    if list_them:
        for s in list_studies():
            out.print(f"[bold]{s.name}[/bold]  {s.description}")
        return
    try:
        if name is None:
            raise UsageError("name a study (archscore study --list shows them)")
        try:
            chosen = [get_study(n.strip()) for n in name.split(",") if n.strip()]
        except KeyError as exc:
            raise UsageError(str(exc.args[0])) from None
        if not chosen:
            raise UsageError("name a study (archscore study --list shows them)")
        if out_dir is None:
            raise UsageError("--out: give a folder for result.json and the figures")
        if fmt not in ("png", "pdf", "svg"):
            raise UsageError(f"--format: png, pdf or svg, not {fmt!r}")
        if not 50 <= dpi <= 600:
            raise UsageError(f"--dpi: give 50..600, not {dpi}")
        if importlib.util.find_spec("matplotlib") is None:
            raise UsageError("studies draw their figures with matplotlib: pip install 'archscore[plots]'")
        if out_dir.exists() and not out_dir.is_dir():
            raise UsageError(f"--out {out_dir}: exists and is not a folder")
        sp, names, built = prepare(space, estimators, None, jobs, given(protocol), weights, oneshot, supernet)
        try:
            sizes = [int(b) for b in validation_batches.split(",") if b.strip()]
        except ValueError:
            raise UsageError("--validation-batches: give whole numbers separated by commas") from None
        try:
            if truth is None and not sp.ground_truth_columns:
                raise UsageError(f"{sp.name} has no built-in ground truth; give --truth path[:column]")
            gt = resolve_truth(sp.name, truth or sp.ground_truth_columns[0])
        except TruthError as exc:
            raise UsageError(str(exc)) from None
        for one in chosen:
            missing = one.missing_capabilities(sp)
            if missing:
                raise UsageError(f"{one.name} needs a space with {', '.join(missing)}; {sp.name} has none")
        if file is None and sample is None:
            raise UsageError("choose the architectures: --sample N or --file")
        if not 2 <= members <= MAX_MEMBERS:
            raise UsageError(f"--members: give 2..{MAX_MEMBERS}")
        options = {
            "bins": bins,
            "top": top,
            "validation_batches": sizes,
            "members": members,
            "supernets": [s.strip() for s in supernets.split(",") if s.strip()],
        }
        archs = select_archs(sp, file, sample, seed, deiso, False, False)
        expanding = [one for one in chosen if one.architectures is not None]
        if expanding and len(chosen) > 1:
            raise UsageError(f"{expanding[0].name} scores architectures of its own choosing: run it alone")
        choose = expanding[0].architectures if expanding else None
        if choose is not None:
            archs = choose(sp, archs, options)
        archs = [a for a in archs if gt.get(a) is not None]
        if len(archs) < 4:
            raise UsageError(f"{len(archs)} of the architectures have ground truth in {gt.column!r}; at least 4 needed")
        for reason, count in gt.skipped.items():
            err.print(f"ground truth: left out {count} entries: {reason}")
    except UsageError as exc:
        fail(str(exc))
    from archscore.estimators.scoring import default_jobs

    jobs = jobs or default_jobs(len(archs))
    resolved = device_option(device)
    with progress() as bar:

        def on_protocol(p):
            task = bar.add_task(f"scoring under protocol {p.hash()[:8]}", total=len(archs))
            return lambda done, total: bar.update(task, completed=done)

        ctx = StudyContext(
            sp,
            archs,
            [t for t in map(gt.get, archs) if t is not None],  # all of them: archs without truth left out above
            names,
            built,
            local_source(sp.name, archs, names, jobs, on_protocol, supernet_dir(built), resolved),
            options,
        )
        results = {}
        for one in chosen:
            folder = out_dir if len(chosen) == 1 else out_dir / one.name
            try:
                ctx.options = with_checkpoints(one, built, options, default_supernet_dir(), sp.name)
                results[one.name] = (folder, run_study(one, ctx, folder, gt.column, fmt, dpi))
            except StudyInputError as exc:
                fail(f"{CLI_OPTIONS.get(exc.field, exc.field)}: {exc.reason}")
            except ValueError as exc:
                fail(str(exc))
    for study_name, (folder, result) in results.items():
        out.print(
            f"{study_name}: {len(archs)} architectures of {sp.name}, {len(ctx._cache)} protocol(s) scored; "
            f"wrote {folder / 'result.json'} and {len(result['figures'])} figure(s)"
        )
        if record:
            from archscore.estimators.analysis.records import record_run, records_dir

            try:
                record_id = record_run(get_study(study_name), result, folder, fmt)
                out.print(f"  kept for the dashboard as {records_dir() / record_id}")
            except OSError as exc:  # the run itself is written: say so, do not fail
                err.print(f"could not keep a copy for the dashboard in {records_dir()}: {exc}")
