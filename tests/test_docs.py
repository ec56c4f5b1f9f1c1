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
    built = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"NO_MKDOCS_2_WARNING": "1", "PATH": "/usr/bin:/bin"},
    )
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
    from archscore.contract.settings import Settings

    page = _text(site, "reference/settings")
    for name in Settings.model_fields:
        assert f"ARCHSCORE_{name.upper()}" in page


def test_every_route_is_in_the_http_reference(site):
    page = _text(site, "reference/http-api")
    document = json.loads((ROOT / "openapi.json").read_text())
    for path, methods in document["paths"].items():
        for method in methods:
            assert f"{method.upper()} {path}" in page, (method, path)
            for parameter in methods[method].get("parameters", []):
                assert parameter["name"] in page, (method, path, parameter["name"])
    for name, schema in document["components"]["schemas"].items():
        assert name in page, name
        assert all(field in page for field in schema.get("properties", {})), name


def test_the_python_reference_shows_the_public_face(site):
    import archscore

    page = _text(site, "reference/python")
    for name in ("score", "evaluate", "get_space", "list_spaces", "list_estimators"):
        assert f"archscore.{name}(" in page, name
    for name in ("ArchScore", "Protocol", "SearchSpace", "EstimatorInfo"):
        assert f"archscore.{name}" in page, name
    for field in archscore.Protocol.model_fields:
        assert field in page, field
    assert "device" in page and "canonical_key(" in page


def test_every_space_and_encoding_is_in_the_spaces_page(site):
    from archscore.estimators.spaces import get_space, list_spaces

    page = _text(site, "concepts/spaces")
    assert len(list_spaces()) >= 5
    for name in list_spaces():
        info = get_space(name).describe()
        assert name in page, name
        for encoding in info["encodings"]:
            assert encoding in page, (name, encoding)
        for column in info["ground_truth_columns"]:
            assert column in page, (name, column)
        for capability in info["capabilities"]:
            assert capability in page, (name, capability)


def test_every_estimator_is_in_the_estimators_page(site):
    from archscore.estimators.catalog import BUILT_IN

    html = (site / "concepts/estimators/index.html").read_text()
    for e in BUILT_IN.values():
        row = re.search(rf"<tr>\s*<td><code>{e.name}</code></td>(.*?)</tr>", html, re.S)
        assert row, e.name
        cells = re.findall(r"<td>(.*?)</td>", row.group(1), re.S)
        assert e.direction in cells and e.version in cells, (e.name, cells)


def test_the_protocol_page_names_every_field_and_its_hash_claims_hold(site):
    from archscore.estimators.protocol import OneShotSettings, Protocol

    page = _text(site, "concepts/protocol")
    for field in (*Protocol.model_fields, *OneShotSettings.model_fields):
        assert f"{field}" in page, field
    # "the default protocol's hash is ..." and "every field changes the hash, init only with weights"
    assert Protocol().hash() in page
    changed = {
        "dataset": "cifar100",
        "data_root": "/data",
        "batch_size": 64,
        "num_batches": 3,
        "seed": 2020,
        "bn_mode": "eval",
        "data_seed": 7,
        "inputs": "noise",
        "weights": "a" * 64,
        "per_member": True,
        "oneshot": OneShotSettings(supernet="b" * 64, post_deiso=False),
    }
    assert set(changed) | {"init"} == set(Protocol.model_fields)
    for field, value in changed.items():
        assert Protocol(**{field: value}).hash() != Protocol().hash(), field
    assert Protocol(init="random").hash() == Protocol().hash()
    assert Protocol(weights="a" * 64, init="random").hash() != Protocol(weights="a" * 64).hash()
    oneshot = OneShotSettings(supernet="b" * 64)
    for field, value in {
        "bn_mode": "recalibrate",
        "post_deiso": False,
        "images": "held_out",
        "batch_size": 50,
        "num_batches": 2,
    }.items():
        other = OneShotSettings(supernet="b" * 64, **{field: value})
        assert Protocol(oneshot=other).hash() != Protocol(oneshot=oneshot).hash(), field
    assert "device" not in Protocol.model_fields


def test_the_criteria_page_has_every_criterion_and_the_default_ks(site):
    from archscore.estimators.ranking import CRITERIA, DEFAULT_BR_KS, DEFAULT_P_KS

    html = (site / "concepts/criteria/index.html").read_text()
    for name, better in CRITERIA.items():
        row = re.search(rf"<tr>\s*<td><code>{name}(\[K\])?</code></td>(.*?)</tr>", html, re.S)
        assert row, name
        assert re.findall(r"<td>(.*?)</td>", row.group(2), re.S)[-1] == better, name
    page = _text(site, "concepts/criteria")
    assert ", ".join(map(str, DEFAULT_P_KS)) in page and ", ".join(map(str, DEFAULT_BR_KS)) in page


def test_every_study_is_described_on_the_criteria_page(site):
    from archscore.estimators.analysis.registry import list_studies

    page = _text(site, "concepts/criteria")
    studies = [s.name for s in list_studies()]
    assert len(studies) >= 10
    assert all(name in page for name in studies), [n for n in studies if n not in page]


def test_every_study_figure_is_on_the_site_and_shown(site):
    figures = sorted((ROOT / "benchmarks/results/studies").rglob("*.png"))
    assert figures
    html = "".join(p.read_text() for p in (site / "results").rglob("index.html"))
    for figure in figures:
        relative = figure.relative_to(ROOT).as_posix()
        assert (site / relative).is_file(), relative
        assert f'src="../../{relative}"' in html, relative
    tracked = subprocess.run(["git", "ls-files", "docs"], cwd=ROOT, capture_output=True, text=True).stdout
    assert not any(line.endswith(f.name) for f in figures for line in tracked.split()), "figures copied into docs/"


def test_the_readme_is_a_short_front_door():
    assert len((ROOT / "README.md").read_text().splitlines()) <= 150


# built from pieces, so that this file does not match its own search
OUTSIDE = ["\\.\\./" + "shared", "SPEC " + "\u00a7", "SPEC " + "\\\\u00a7"]
DATA_FIXTURES = ("tests/data/", "tests/fixtures/")


def test_nothing_points_outside_the_repository():
    args = ["git", "grep", "-nE", "|".join(OUTSIDE), "--", "."]
    found = subprocess.run(args, cwd=ROOT, capture_output=True, text=True)
    assert found.returncode in (0, 1), found.stderr
    offenders = [line for line in found.stdout.splitlines() if not line.startswith(DATA_FIXTURES)]
    assert not offenders, offenders
