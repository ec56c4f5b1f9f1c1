"""Docs that cannot drift: every code block marked ``<!-- runnable -->`` in the README and the docs pages
runs here, the shell ones against a real stack (`archscore up` on its embedded Redis, on a free port that
replaces the snippets' 127.0.0.1:8000)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from archscore.service import runner

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
BLOCK = re.compile(r"<!-- runnable -->\n```(python|sh)\n(.*?)```", re.S)


def snippets() -> list[tuple[str, str, str]]:
    """(where, language, code) of every runnable block."""
    found = []
    for page in PAGES:
        for i, (language, code) in enumerate(BLOCK.findall(page.read_text())):
            found.append((f"{page.relative_to(ROOT)}#{i}", language, code))
    return found


def test_the_readme_has_runnable_snippets_of_each_kind():
    kinds = {language for where, language, _ in snippets() if where.startswith("README.md")}
    assert kinds == {"python", "sh"}
    assert sum(where.startswith("README.md") for where, _, _ in snippets()) >= 3


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> str:
    """`archscore up` as the quickstart runs it, on a free port; its address as host:port."""
    tmp = tmp_path_factory.mktemp("snippets")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARCHSCORE_")}
    env.update(ARCHSCORE_DATA_DIR=str(tmp / "data"), OMP_NUM_THREADS="1")
    port = runner.free_port()
    log = open(tmp / "up.log", "wb")
    up = subprocess.Popen([sys.executable, "-c", "from archscore.service.cli import main; main()", "up", "--port",
                           str(port)], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while True:
            assert up.poll() is None, (tmp / "up.log").read_text()
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, (tmp / "up.log").read_text()
            time.sleep(0.5)
        yield f"127.0.0.1:{port}"
    finally:
        up.send_signal(signal.SIGTERM)
        try:
            up.wait(40)
        except subprocess.TimeoutExpired:
            up.kill()
        log.close()


@pytest.mark.slow
@pytest.mark.parametrize(("where", "language", "code"), snippets(), ids=[w for w, _, _ in snippets()])
def test_runnable_snippet(where, language, code, request, tmp_path):
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "OMP_NUM_THREADS": "1"}
    if "127.0.0.1:8000" in code or "localhost:8000" in code:
        address = request.getfixturevalue("stack")
        code = code.replace("127.0.0.1:8000", address).replace("localhost:8000", address)
    command = [sys.executable, "-c", code] if language == "python" else ["bash", "-e", "-o", "pipefail", "-c", code]
    ran = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert ran.returncode == 0, f"{where}\n{ran.stdout[-2000:]}\n{ran.stderr[-3000:]}"
    assert ran.stdout.strip(), f"{where} printed nothing"
