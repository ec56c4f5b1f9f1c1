"""The layering rules of docs/concepts/architecture.md, checked on the source: no import loops between
modules, the API and the workers tied only through archscore.contract, no Redis command in a route, and
every module the page names exists."""

from __future__ import annotations

import ast
import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = {
    "archscore": "archscore",
    "archscore.estimators": "estimators",
    "archscore.service": "service",
    "archscore.workers": "workers",
}


def _modules() -> dict[str, Path]:
    """Every module of the distribution by its import name (the folders install under ``archscore``)."""
    modules = {}
    for package, folder in FOLDERS.items():
        for path in (ROOT / folder).rglob("*.py"):
            parts = list(path.relative_to(ROOT / folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join([package, *parts])] = path
    return modules


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """The modules of the distribution that ``name`` imports (at any level: function-local too)."""

    def known(target: str) -> str | None:
        while target and target not in MODULES:
            target = target.rpartition(".")[0]
        return target or None

    found = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {known(a.name) for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([node.module] if node.module else []))
            for alias in node.names:  # `from package import module` imports the module
                found.add(known(f"{base}.{alias.name}") if f"{base}.{alias.name}" in MODULES else known(base))
    return {m for m in found if m and m != name}


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _cycles() -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in GRAPH[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in GRAPH:
        if v not in index:
            visit(v)
    return cycles


def test_the_modules_are_found():
    assert {
        "archscore.contract.store",
        "archscore.service.routes.scores",
        "archscore.workers.tasks",
        "archscore.estimators.spaces.nb201.space",
    } <= set(MODULES)


def test_no_module_imports_one_that_imports_it_back():
    assert _cycles() == []


def test_the_cycle_finder_sees_a_loop():
    GRAPH["archscore.contract.tasks"].add("archscore.contract.broker")  # broker imports tasks
    try:
        assert ["archscore.contract.broker", "archscore.contract.tasks"] in _cycles()
    finally:
        GRAPH["archscore.contract.tasks"].discard("archscore.contract.broker")


@pytest.mark.parametrize(
    ("side", "other"),
    [
        ("archscore.workers", "archscore.service"),
        ("archscore.service", "archscore.workers"),
        ("archscore.contract", "archscore.service"),
        ("archscore.contract", "archscore.workers"),
        ("archscore.estimators", "archscore.service"),
        ("archscore.estimators", "archscore.workers"),
        ("archscore.estimators", "archscore.contract"),
    ],
)
def test_one_side_never_imports_the_other(side, other):
    crossing = sorted(
        f"{name} -> {target}"
        for name, targets in GRAPH.items()
        if name.startswith(side + ".") or name == side
        for target in targets
        if target.startswith(other + ".") or target == other
    )
    assert crossing == []


def test_the_contract_is_torch_free():
    for name, path in MODULES.items():
        if name.startswith("archscore.contract"):
            assert not re.search(r"^\s*(import|from) torch", path.read_text(), re.M), name


REDIS_COMMAND = re.compile(r"\b(redis|pipe|r)\.(?!asyncio)\w+\(|\.pipeline\(|\bstore\.")


def test_no_route_talks_to_redis():
    routes = [(n, p) for n, p in MODULES.items() if n.startswith("archscore.service.routes")]
    assert len(routes) >= 9
    for name, path in routes:
        hits = [line.strip() for line in path.read_text().splitlines() if REDIS_COMMAND.search(line)]
        assert hits == [], f"{name} talks to Redis itself: {hits}"


def test_the_architecture_page_names_modules_that_exist():
    page = (ROOT / "docs" / "concepts" / "architecture.md").read_text()
    named = set(re.findall(r"`(archscore(?:\.\w+)+)`", page))
    assert len(named) > 20
    missing = sorted(n for n in named if importlib.util.find_spec(n) is None)
    assert missing == []
    for resource in re.findall(r"`(\w+)`", page[page.index("`archscore.service.routes` (") :]):
        if resource in ("scores", "jobs", "rankings", "truth", "spaces", "studies", "supernets", "health", "dashboard"):
            assert f"archscore.service.routes.{resource}" in MODULES


def test_the_workers_run_every_task_of_the_contract_on_its_queue():
    from archscore.contract.tasks import TASKS, ScoreChunk
    from archscore.workers.celery_app import app

    app.loader.import_default_modules()  # the task modules, as a worker imports them at start
    assert {t.task_name for t in TASKS} <= set(app.tasks)
    routes = app.conf.task_routes
    assert {t.task_name: routes[t.task_name]["queue"] for t in TASKS} == {t.task_name: t.queue for t in TASKS}
    chunk = ScoreChunk(job_id="a" * 32, chunk_index=3, space="nb201", protocol={}, estimators=["snip"], archs=["x"])
    assert chunk.task_id() == "a" * 32 + ".3"
    assert ScoreChunk.model_validate(chunk.kwargs()) == chunk  # what a worker reads is what the API sent
