"""Moved to ``archscore.estimators.scoring``, which sits above the zero-shot and one-shot packages.

Kept only while ``archscore.estimators.cli`` and ``archscore.estimators.analysis`` still import it from
here; delete this module once they import ``archscore.estimators.scoring``.
"""

from archscore.estimators.scoring import ProgressCallback, default_jobs, result_record, score_many

__all__ = ["ProgressCallback", "default_jobs", "result_record", "score_many"]
