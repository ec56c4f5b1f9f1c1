"""`python -m archscore.estimators.cli`: the library commands."""

from archscore.estimators.cli import main

if __name__ == "__main__":  # not when a tool imports every module of the package
    main()
