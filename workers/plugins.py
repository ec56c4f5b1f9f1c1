"""The plugin estimators a worker scores: those whose module ARCHSCORE_ESTIMATOR_MODULES lists, or, when it is
unset, every installed plugin's. The worker imports a plugin's module when it first scores one of its
estimators (archscore.estimators.zero_shot.plugin_loader)."""

from __future__ import annotations

from archscore.contract.settings import get_settings
from archscore.estimators.catalog import ESTIMATORS
from archscore.estimators.plugins import PluginError


def check_plugins(estimators: list[str]) -> None:
    """PluginError naming every estimator of a chunk that this worker does not score: one of a plugin not
    installed here (the API's environment has it) or whose module the setting leaves out."""
    allowed = get_settings().estimator_modules
    problems = []
    for name in estimators:
        info = ESTIMATORS.get(name)
        if info is None:
            problems.append(f"estimator {name!r} is not installed on this worker (install its package here too)")
        elif info.module is not None and allowed is not None and info.module not in allowed:
            problems.append(
                f"estimator {name!r}: this worker does not load its module {info.module} "
                f"(ARCHSCORE_ESTIMATOR_MODULES: {', '.join(allowed) or 'none'})"
            )
    if problems:
        raise PluginError("; ".join(problems))
