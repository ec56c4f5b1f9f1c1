"""The archscore command line invoked in-process, as a user runs it."""

from __future__ import annotations

from typer.testing import CliRunner

runner = CliRunner()


def run(*args: str, stdin: str | None = None):
    """`archscore ARGS...` with ``stdin``; typer's Result (exit_code, stdout, stderr)."""
    from archscore.service.cli import app

    return runner.invoke(app, list(args), input=stdin)
