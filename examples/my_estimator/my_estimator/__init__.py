"""An example estimator plugin for archscore. Kept empty: the facts (``manifest``) must load without torch,
and importing them imports this package first."""
