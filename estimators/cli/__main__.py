"""`python -m archscore.estimators.cli`: the library commands."""

from archscore.estimators.cli import main

main()
