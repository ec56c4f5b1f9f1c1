"""A plugin estimator's function is registered where it is scored: the module its facts name
(archscore.estimators.plugins) is imported the first time one of its estimators is asked for, in this
process (each process of a pool, each worker), and its ``register_proxy`` registers the function."""

from __future__ import annotations

import importlib
from collections.abc import Iterable

from archscore.estimators.plugins import PluginError
from archscore.estimators.zero_shot.manifest import ZERO_SHOT
from archscore.estimators.zero_shot.proxies import PROXIES


def load_plugins(names: Iterable[str]) -> None:
    """Register the function of every plugin estimator among ``names`` (zero-shot names of the catalog) that
    is not registered yet. PluginError naming the estimator when its module cannot be imported or does not
    register it."""
    for name in names:
        module = ZERO_SHOT[name].module
        if module is None or name in PROXIES:
            continue
        try:
            importlib.import_module(module)
        except Exception as exc:
            raise PluginError(
                f"estimator {name!r}: its module {module} cannot be imported: {type(exc).__name__}: {exc}"
            ) from exc
        if name not in PROXIES:
            raise PluginError(
                f"estimator {name!r}: its module {module} registers no function under that name "
                f"(decorate it with @register_proxy({name!r}))"
            )
