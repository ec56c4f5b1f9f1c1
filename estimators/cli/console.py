"""What every command prints with: stdout and stderr consoles, the one-line error (exit status 2), the
progress bar, and the --device option's check."""

from __future__ import annotations

import sys
from typing import NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

out = Console(width=None if sys.stdout.isatty() else 120)
err = Console(stderr=True)


class UsageError(Exception):
    """Bad input from the user: reported in one line, exit status 2."""


def fail(message: str) -> NoReturn:
    """Print ``error: message`` on one line of stderr and exit with status 2."""
    err.print(f"error: {message}", markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(2)


def progress() -> Progress:
    """A progress bar on stderr (done / total, elapsed, left)."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("left"),
        TimeRemainingColumn(),
        console=err,
        transient=False,
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
