"""Docs that cannot drift: every code block marked runnable in README.md and docs/**/*.md runs here.

The marker is an HTML comment on the line just before the fence, invisible once rendered:

    <!-- runnable -->
    ```sh
    archscore score --sample 2 --seed 0 -e params
    ```

``<!-- runnable expect='REGEX' -->`` (or ``expect="REGEX"``) also checks the block's standard output
(``re.search``). Python blocks run with the test's interpreter, shell blocks (``sh``, ``bash``, ``shell``)
with ``bash -e -o pipefail``, each in an empty folder of its own (holding a link to ``examples/``), with
the virtual environment's ``bin`` first on PATH. A block that talks to the service (it names
127.0.0.1:8000 or localhost:8000) runs against one real stack that the test starts as the quickstart does
(``archscore up --port <free port>`` on its embedded Redis, in a data folder of its own), with the address
rewritten to that port; those blocks run in one test, in page order, so the stack starts once however the
suite is distributed. Every block must exit 0 and print something.

Beside running them, every code block of those pages (runnable or not) is held to the rules that keep
examples from failing silently: curl with ``-g`` and ``--fail-with-body``, never a bare ``-s`` (``-sS``
keeps the errors), and no ``wait`` above the server's default bound.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers.http import wait_answering
from helpers.stack import UP

from archscore.contract.settings import Settings
from archscore.service import runner

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
LANGUAGES = {"python": "python", "sh": "sh", "bash": "sh", "shell": "sh"}
MARKER = re.compile(r"^<!--\s*runnable(?P<options>\s[^>]*)?-->\s*$")
EXPECT = re.compile(r"""^expect=(?P<quote>["'])(?P<expect>.*)(?P=quote)$""")
FENCE = re.compile(r"^```(?P<info>\S*)\s*$")
SERVICE = re.compile(r"(?:127\.0\.0\.1|localhost):8000")
BLOCK_TIMEOUT = 180
LINKED = ("examples",)


@dataclass(frozen=True)
class Block:
    where: str  # page:line of the fence
    language: str  # the fence's info string
    code: str
    runnable: bool
    expect: str | None = None

    @property
    def needs_service(self) -> bool:
        return bool(SERVICE.search(self.code))


def _blocks(page: Path) -> tuple[list[Block], list[str]]:
    """Every fenced block of a page, and the problems of its markers (a marker must sit on the line just
    before a fence of a language that runs here)."""
    lines = page.read_text().splitlines()
    name = page.relative_to(ROOT).as_posix()
    blocks, problems = [], []
    i = 0
    while i < len(lines):
        marker = MARKER.match(lines[i].strip())
        if lines[i].strip().startswith("<!--") and "runnable" in lines[i] and not marker:
            problems.append(f"{name}:{i + 1}: malformed marker {lines[i].strip()!r}")
        expect = None
        if marker:
            options = (marker.group("options") or "").strip()
            if options:
                parsed = EXPECT.match(options)
                if not parsed:
                    problems.append(f"{name}:{i + 1}: unknown marker option {options!r}")
                else:
                    expect = parsed.group("expect")
            fence = FENCE.match(lines[i + 1]) if i + 1 < len(lines) else None
            if not fence or fence.group("info") not in LANGUAGES:
                problems.append(f"{name}:{i + 1}: the runnable marker is not followed by a python or shell fence")
                i += 1
                continue
            i += 1
        fence = FENCE.match(lines[i])
        if fence and fence.group("info"):
            start = i
            body = []
            i += 1
            while i < len(lines) and not lines[i].startswith("```"):
                body.append(lines[i])
                i += 1
            blocks.append(
                Block(
                    f"{name}:{start + 1}",
                    fence.group("info"),
                    "\n".join(body) + "\n",
                    runnable=bool(marker),
                    expect=expect,
                )
            )
        i += 1
    return blocks, problems


def all_blocks() -> list[Block]:
    return [b for page in PAGES for b in _blocks(page)[0]]


def runnable() -> list[Block]:
    return [b for b in all_blocks() if b.runnable]


def test_the_markers_are_well_formed():
    problems = [p for page in PAGES for p in _blocks(page)[1]]
    assert not problems, "\n".join(problems)


def test_the_readme_has_runnable_snippets():
    """The README's examples are the first anyone copies: the marker must not vanish from them."""
    readme = [b for b in runnable() if b.where.startswith("README.md:")]
    languages = {LANGUAGES[b.language] for b in readme}
    assert languages == {"python", "sh"}, f"runnable blocks in README.md: {[b.where for b in readme]}"
    assert any(b.needs_service for b in readme), "no runnable HTTP example in README.md"
    assert any(not b.needs_service and LANGUAGES[b.language] == "sh" for b in readme), "no runnable CLI example"


def test_the_guides_have_runnable_snippets():
    pages = {b.where.split(":")[0] for b in runnable()}
    for page in ("docs/getting-started.md", "docs/guides/search-loop.md", "docs/guides/python.md"):
        assert page in pages, f"no runnable block in {page}"


def _curl_commands(code: str) -> list[str]:
    """Each curl command of a shell block, continuation lines joined."""
    joined = re.sub(r"\\\n", " ", code)
    return [m.group(0) for m in re.finditer(r"(?<![\w-])curl\s[^\n|;]*", joined)]


def test_curl_examples_fail_loudly():
    offenders = []
    for block in all_blocks():
        if LANGUAGES.get(block.language) != "sh" and block.language not in ("console", "text"):
            continue
        for command in _curl_commands(block.code):
            flags = set(re.findall(r"(?<=\s)-([A-Za-z]+)(?=\s)", f" {command} "))
            letters = "".join(flags)
            if "--fail-with-body" not in command:
                offenders.append(f"{block.where}: no --fail-with-body: {command[:80]}")
            if "g" not in letters and "--globoff" not in command:
                offenders.append(f"{block.where}: no -g: {command[:80]}")
            if "s" in letters and "S" not in letters:
                offenders.append(f"{block.where}: -s without -S hides errors: {command[:80]}")
    assert not offenders, "\n".join(offenders)


def test_waits_are_within_the_servers_bound():
    bound = Settings.model_fields["max_wait_seconds"].default
    offenders = [
        f"{b.where}: wait={w}"
        for b in all_blocks()
        for w in re.findall(r"[?&]wait=(\d+(?:\.\d+)?)", b.code)
        if float(w) > bound
    ]
    assert not offenders, f"waits above the default bound of {bound:g} s:\n" + "\n".join(offenders)


def _environment(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARCHSCORE_")}
    env.update(
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
        ARCHSCORE_DATA_DIR=str(data_dir),
        OMP_NUM_THREADS="1",
        MPLBACKEND="Agg",
        NO_COLOR="1",
    )
    return env


def _run(block: Block, folder: Path, env: dict[str, str], address: str | None = None) -> str | None:
    """Run one block in ``folder``; None when it passed, else what went wrong."""
    code = SERVICE.sub(address, block.code) if address else block.code
    folder.mkdir(parents=True, exist_ok=True)
    for name in LINKED:  # paths of the repository that examples name (`node examples/client.mjs`)
        if not (folder / name).exists():
            (folder / name).symlink_to(ROOT / name)
    if LANGUAGES[block.language] == "python":
        command = [sys.executable, "-c", code]
    else:
        command = ["bash", "-e", "-o", "pipefail", "-c", code]
    try:
        ran = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=BLOCK_TIMEOUT)
    except subprocess.TimeoutExpired as exc:
        return f"{block.where}: still running after {BLOCK_TIMEOUT} s\n{(exc.stdout or '')[-1500:]}"
    if ran.returncode != 0:
        return f"{block.where}: exit status {ran.returncode}\n{ran.stdout[-1500:]}\n{ran.stderr[-2500:]}"
    if not ran.stdout.strip():
        return f"{block.where}: printed nothing\n{ran.stderr[-1500:]}"
    if block.expect and not re.search(block.expect, ran.stdout):
        return f"{block.where}: output does not match {block.expect!r}\n{ran.stdout[-1500:]}"
    return None


def _missing_tool(block: Block) -> str | None:
    first = block.code.strip().split()[0] if block.code.strip() else ""
    return first if first == "node" and shutil.which("node") is None else None


@pytest.mark.slow
@pytest.mark.parametrize("block", [b for b in runnable() if not b.needs_service], ids=lambda b: b.where)
def test_library_snippet(block, tmp_path):
    problem = _run(block, tmp_path / "work", _environment(tmp_path / "data"))
    assert problem is None, problem


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> str:
    """`archscore up` as the quickstart runs it, on a free port; its address as host:port."""
    tmp = tmp_path_factory.mktemp("stack")
    env = _environment(tmp / "data")
    port = runner.free_port()
    log = open(tmp / "up.log", "wb")
    up = subprocess.Popen([*UP, "--port", str(port)], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        # the scoring worker and the supernet trainer both registered
        wait_answering(
            f"http://127.0.0.1:{port}/readyz",
            120,
            procs={"archscore up": up},
            logs={"archscore up": tmp / "up.log"},
            interval=0.5,
            ok=lambda ready: ready.status_code == 200 and ready.json()["workers"] == 2,
        )
        yield f"127.0.0.1:{port}"
    finally:
        up.send_signal(signal.SIGTERM)
        try:
            up.wait(40)
        except subprocess.TimeoutExpired:
            up.kill()
        log.close()


@pytest.mark.slow
def test_service_snippets(stack, tmp_path):
    """Every runnable block that calls the API, in page order, against one real stack."""
    blocks = [b for b in runnable() if b.needs_service]
    assert blocks
    env = _environment(tmp_path / "data")
    problems, skipped = [], []
    for i, block in enumerate(blocks):
        if tool := _missing_tool(block):
            skipped.append(f"{block.where} ({tool} is not on PATH)")
            continue
        if problem := _run(block, tmp_path / f"block{i}", env, stack):
            problems.append(problem)
    if skipped:
        warnings.warn(f"runnable blocks not run: {', '.join(skipped)}", stacklevel=1)
    assert not problems, f"{len(problems)} of {len(blocks)} blocks failed:\n\n" + "\n\n".join(problems)
