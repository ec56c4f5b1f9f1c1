"""Estimators of other packages (plugins): found through the entry point group ``archscore.estimators`` and
their facts read without importing their code, so that every process, the torch-free API included, lists,
validates and caches them like the built-in ones (docs/guides/own-estimator.md).

An entry point is named after its estimator and names a dict of the estimator's facts, kept in a module that
imports neither torch nor the plugin's function::

    [project.entry-points."archscore.estimators"]
    my_plain = "my_estimator.manifest:MY_PLAIN"

    MY_PLAIN = {"module": "my_estimator.plain", "needs_data": True, "version": "1", "unit": "", "description": "..."}

``module`` is where the function is registered with ``register_proxy``; a scoring process imports it the first
time it scores the estimator (archscore.estimators.zero_shot.plugin_loader). This module imports nothing of
the project: the catalog calls it.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Collection
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points

GROUP = "archscore.estimators"
# names travel in comma-separated CLI options and in Redis keys ({estimator}@{version})
NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")
VERSION = re.compile(r"[A-Za-z0-9._-]{1,32}")
FACTS: dict[str, type] = {"module": str, "needs_data": bool, "version": str, "unit": str, "description": str}
RESERVED = frozenset({"all"})  # the command line's and the library's word for every zero-shot estimator


class PluginError(ValueError):
    """An installed package declares an estimator archscore cannot take; the message names the entry point."""


@dataclass(frozen=True)
class PluginFacts:
    """One plugin estimator's facts, as its entry point declares them (always zero-shot, higher is better)."""

    name: str
    module: str
    needs_data: bool
    version: str
    unit: str
    description: str


def discover(built_in: Collection[str]) -> list[PluginFacts]:
    """Every estimator the installed packages declare, sorted by name. PluginError when one shadows a name of
    ``built_in`` (or another package's), or its facts are missing, mistyped or load torch."""
    found: dict[str, tuple[PluginFacts, str]] = {}
    for point in entry_points(group=GROUP):
        where = _where(point)
        facts = _facts(point, where)
        if facts.name in built_in:
            raise PluginError(f"{where}: {facts.name!r} is the name of a built-in estimator; choose another name")
        if facts.name in RESERVED:
            raise PluginError(f"{where}: {facts.name!r} means every zero-shot estimator; choose another name")
        if facts.name in found:
            raise PluginError(f"{where}: estimator {facts.name!r} is also declared by {found[facts.name][1]}")
        found[facts.name] = (facts, where)
    return [found[name][0] for name in sorted(found)]


def _where(point: EntryPoint) -> str:
    dist = getattr(point, "dist", None)
    package = f" of {dist.name} {dist.version}" if dist is not None else ""
    return f"entry point {point.name} = {point.value!r}{package} (group {GROUP})"


def _facts(point: EntryPoint, where: str) -> PluginFacts:
    if not NAME.fullmatch(point.name):
        raise PluginError(f"{where}: an estimator name is a lower-case letter, then letters, digits or _ (64 at most)")
    had_torch = "torch" in sys.modules
    try:
        declared = point.load()
    except Exception as exc:
        raise PluginError(f"{where}: cannot be loaded: {type(exc).__name__}: {exc}") from exc
    if not had_torch and "torch" in sys.modules:
        raise PluginError(
            f"{where}: loading the facts imported torch; keep them in a module that imports neither torch nor "
            "the function (the API reads them and never imports torch)"
        )
    if not isinstance(declared, dict):
        raise PluginError(f"{where}: names a {type(declared).__name__}, not a dict of the estimator's facts")
    missing = sorted(set(FACTS) - set(declared))
    unknown = sorted(set(declared) - set(FACTS))
    wrong = [key for key, kind in FACTS.items() if key in declared and type(declared[key]) is not kind]
    problems = [f"missing {', '.join(missing)}"] if missing else []
    problems += [f"unknown {', '.join(unknown)} (facts: {', '.join(FACTS)})"] if unknown else []
    problems += [f"{key} must be a {FACTS[key].__name__}" for key in wrong]
    if not problems and not VERSION.fullmatch(declared["version"]):
        problems.append("version must be 1 to 32 letters, digits, '.', '_' or '-'")
    if not problems and not all(part.isidentifier() for part in declared["module"].split(".")):
        problems.append("module must be a dotted module name (the module that registers the function)")
    if problems:
        raise PluginError(f"{where}: {'; '.join(problems)}")
    return PluginFacts(name=point.name, **declared)
