"""The ``archscore`` command line: list spaces and estimators, score architectures, evaluate estimators
(the full command, with the service's commands, is archscore.service.cli).

Bad input exits with status 2 and a one-line reason on stderr. The commands live in this package's
modules; what they print with is archscore.estimators.cli.console, and the options they derive from the
library's models archscore.estimators.cli.options.
"""

from __future__ import annotations

import typer

from archscore.estimators.cli.evaluate import demo, evaluate
from archscore.estimators.cli.score import score
from archscore.estimators.cli.spaces import estimators, spaces

app = typer.Typer(help="Score neural architectures with efficient performance estimators.", no_args_is_help=True)
for command in (spaces, estimators, score, evaluate, demo):
    app.command()(command)


def main() -> None:
    app()


__all__ = ["app", "main"]
