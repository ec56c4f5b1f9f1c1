"""The docs site builds with --strict, its reference pages are generated from the code (every command,
setting and route appears), and nothing in the repository points outside it."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import typer

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    built = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(out)], cwd=ROOT,
                           capture_output=True, text=True, env={"NO_MKDOCS_2_WARNING": "1", "PATH": "/usr/bin:/bin"})
    assert built.returncode == 0, built.stderr[-3000:]
    return out


def _text(site: Path, page: str) -> str:
    return re.sub(r"<[^>]+>", "", (site / page / "index.html").read_text())


def test_every_command_and_option_is_in_the_cli_reference(site):
    from archscore.service.cli import app

    page = _text(site, "reference/cli")
    paths = []

    def walk(command, path):
        if hasattr(command, "commands"):
            for name, sub in command.commands.items():
                walk(sub, f"{path} {name}")
        else:
            paths.append((path, [o for p in command.params for o in p.opts if o.startswith("--") and o != "--help"]))

    walk(typer.main.get_command(app), "archscore")
    assert len(paths) >= 13
    for path, options in paths:
        assert path in page, path
        assert all(o in page for o in options), (path, [o for o in options if o not in page])
    assert "--device" in page


def test_every_setting_is_in_the_settings_reference(site):
    from archscore.service.settings import Settings

    page = _text(site, "reference/settings")
    for name in Settings.model_fields:
        assert f"ARCHSCORE_{name.upper()}" in page


def test_every_route_is_in_the_http_reference(site):
    page = _text(site, "reference/http-api")
    document = json.loads((ROOT / "openapi.json").read_text())
    for path, methods in document["paths"].items():
        for method in methods:
            assert f"{method.upper()} {path}" in page, (method, path)


def test_the_python_reference_shows_the_public_face(site):
    page = _text(site, "reference/python")
    for name in ("archscore.score(", "archscore.evaluate(", "archscore.get_space(", "archscore.list_estimators(",
                 "archscore.Protocol", "device"):
        assert name in page


def test_the_results_pages_carry_their_figures(site):
    for figure in re.findall(r"\]\(\.\./(benchmarks/results/[^)]+\.png)\)", (ROOT / "docs/results/studies.md").read_text()):
        assert (site / figure).is_file(), figure


def test_the_readme_is_a_short_front_door():
    assert len((ROOT / "README.md").read_text().splitlines()) <= 150


def test_nothing_points_outside_the_repository():
    listed = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True)
    files = listed.stdout.split() if listed.returncode == 0 else [
        str(p.relative_to(ROOT)) for p in ROOT.rglob("*") if p.is_file() and ".git" not in p.parts]
    offenders = []
    for name in files:
        if name.startswith("tests/") or name == "tests/test_docs.py":
            continue
        path = ROOT / name
        if path.suffix not in (".py", ".md", ".json", ".yml", ".toml", ".mjs", ".js", ".html", ".sh", "") or not path.is_file():
            continue
        text = path.read_text(errors="ignore")
        if re.search(r"\.\./shared|SPEC §|SPEC \\u00a7", text):
            offenders.append(name)
    assert not offenders
