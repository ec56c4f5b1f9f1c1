"""`archscore score`: zero-shot scores of architectures, as JSON lines or CSV."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from archscore.estimators.cli.console import UsageError, device_option, fail
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
    WeightsOpt,
    given,
    protocol_options,
)
from archscore.estimators.cli.prepare import check_data, prepare, run_scoring, select_archs
from archscore.estimators.spaces import DEFAULT_SPACE


@protocol_options
def score(
    space: SpaceOpt = DEFAULT_SPACE,
    estimators: EstOpt = "all",
    file: FileOpt = None,
    sample: SampleOpt = None,
    seed: SeedOpt = 0,
    deiso: DeisoOpt = False,
    fmt: Annotated[str, typer.Option("--format", help="jsonl or csv")] = "jsonl",
    output: Annotated[Path | None, typer.Option("--out", "-o", help="write here instead of stdout")] = None,
    protocol: OptionValues | None = None,
    weights: WeightsOpt = None,
    jobs: JobsOpt = 0,
    device: DeviceOpt = "auto",
) -> None:
    """Score architectures (from --file, stdin, or --sample) with zero-shot estimators."""
    try:
        if fmt not in ("jsonl", "csv"):
            raise UsageError(f"--format must be jsonl or csv, not {fmt!r}")
        sp, names, built = prepare(space, estimators, output, jobs, given(protocol), weights)
        archs = select_archs(sp, file, sample, seed, False if file else deiso, False, False)
        check_data(built)
    except UsageError as exc:
        fail(str(exc))
    records = run_scoring(archs, sp, names, built, jobs, device_option(device))
    stream = output.open("w", newline="") if output else sys.stdout
    try:
        if fmt == "jsonl":
            for r in records:
                stream.write(json.dumps({"space": sp.name, "protocol_hash": built.hash(), **r}) + "\n")
        else:
            writer = csv.writer(stream)
            writer.writerow(["arch", "canonical_key", *names, "reasons"])
            for r in records:
                values = ("" if r["scores"][n] is None else r["scores"][n] for n in names)
                writer.writerow(
                    [r["arch"], r["canonical_key"], *values, json.dumps(r["reasons"]) if r["reasons"] else ""]
                )
    finally:
        if output:
            stream.close()
