"""Deployment files: compose wiring, the Dockerfile, and that what they run and set really exists.

No Docker engine is needed: the files are parsed and checked against the code (CLI, Settings, pyproject).
"""

from __future__ import annotations

import importlib
import re
import shlex
import tomllib
from pathlib import Path
from urllib.parse import urlparse

import pytest
import typer.main
import yaml

from archscore.contract.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
ENV_PREFIX = Settings.model_config["env_prefix"]


def _load(name: str) -> dict:
    return yaml.safe_load((ROOT / name).read_text())


@pytest.fixture(scope="module")
def compose() -> dict:
    return _load("docker-compose.yml")


@pytest.fixture(scope="module")
def gpu() -> dict:
    return _load("docker-compose.gpu.yml")


@pytest.fixture(scope="module")
def dockerfile() -> str:
    return (ROOT / "Dockerfile").read_text()


@pytest.fixture(scope="module")
def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _env(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {k: str(v) for k, v in env.items()}


def _command(service: dict) -> list[str]:
    command = service.get("command")
    return shlex.split(command) if isinstance(command, str) else list(command or [])


def _depends_healthy(service: dict, on: str) -> bool:
    depends = service.get("depends_on") or {}
    return isinstance(depends, dict) and (depends.get(on) or {}).get("condition") == "service_healthy"


def _instructions(dockerfile: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    text = re.sub(r"\\\n", " ", dockerfile)
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def _exec_form(args: str) -> list[str]:
    import json

    value = json.loads(args)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), args
    return value


def _runtime_stage(dockerfile: str) -> list[tuple[str, str]]:
    instructions = _instructions(dockerfile)
    last_from = max(i for i, (word, _) in enumerate(instructions) if word == "FROM")
    return instructions[last_from:]


def _cli_accepts(argv: list[str]) -> None:
    """Parse ``archscore ARGV`` with the real CLI without running it (raises on unknown commands/options)."""
    assert argv[0] == "archscore", argv
    group = typer.main.get_command(importlib.import_module("archscore.service.cli").app)
    ctx = group.make_context("archscore", [argv[1], "--help"], resilient_parsing=True)
    command = group.get_command(ctx, argv[1])
    assert command is not None, f"archscore has no command {argv[1]!r}"
    command.make_context(argv[1], list(argv[2:]), parent=ctx)


# --------------------------------------------------------------------------- #
# docker-compose.yml
# --------------------------------------------------------------------------- #
def test_services_present(compose):
    assert {"redis", "api", "worker", "trainer", "flower"} <= set(compose["services"])


def test_redis_service(compose):
    redis = compose["services"]["redis"]
    assert redis["image"].startswith("redis:7")
    command = _command(redis)
    assert command[0] == "redis-server"
    assert "--appendonly" in command and command[command.index("--appendonly") + 1] == "yes"
    volumes = [v if isinstance(v, str) else f"{v['source']}:{v['target']}" for v in redis.get("volumes", [])]
    named = [v.split(":")[0] for v in volumes if v.split(":")[1] == "/data"]
    assert named, "redis needs a volume on /data"
    assert named[0] in (compose.get("volumes") or {}), "the /data volume should be a named volume"
    test = redis["healthcheck"]["test"]
    assert "redis-cli" in " ".join(test) and "ping" in " ".join(test)


def test_redis_has_a_memory_cap_that_evicts_only_entries_with_a_ttl(compose):
    command = _command(compose["services"]["redis"])
    assert command[command.index("--maxmemory-policy") + 1] == "volatile-lru"
    assert command[command.index("--maxmemory") + 1] not in ("0", "")


def test_api_and_worker_share_the_image(compose):
    api, worker = compose["services"]["api"], compose["services"]["worker"]
    assert api.get("image") and api["image"] == worker.get("image")
    assert api.get("build") and api["build"] == worker.get("build")
    context = api["build"]["context"] if isinstance(api["build"], dict) else api["build"]
    assert (ROOT / context / api["build"].get("dockerfile", "Dockerfile")).is_file()


@pytest.mark.parametrize("name", ["api", "worker"])
def test_redis_url_and_health_dependency(compose, name):
    service = compose["services"][name]
    url = urlparse(_env(service)[f"{ENV_PREFIX}REDIS_URL"])
    assert url.scheme == "redis" and url.hostname == "redis", url
    assert url.hostname in compose["services"]
    assert _depends_healthy(service, "redis")


def test_api_ports_healthcheck_and_command(compose):
    api = compose["services"]["api"]
    assert any(str(p).split(":")[-2:] == ["8000", "8000"] for p in api["ports"]), api["ports"]
    test = " ".join(api["healthcheck"]["test"])
    assert "/healthz" in test and "8000" in test
    command = _command(api)
    if command:
        _cli_accepts(command)
        assert command[:2] == ["archscore", "api"] and "0.0.0.0" in command


def test_worker_command(compose):
    command = _command(compose["services"]["worker"])
    assert command[:2] == ["archscore", "worker"]
    _cli_accepts(command)
    assert "ports" not in compose["services"]["worker"]


@pytest.mark.parametrize("name", ["worker", "trainer"])
def test_worker_healthcheck_addresses_the_node_name_the_command_gives(compose, name):
    """The health check pings ``--destination NAME@$(hostname)``: the command must name the node so (the
    shell's $(hostname), not $HOSTNAME, which podman does not set; tests/test_container.py runs it)."""
    service = compose["services"][name]
    command = _command(service)
    node = command[command.index("--name") + 1]
    assert f"--destination {node}@$$(hostname)" in " ".join(service["healthcheck"]["test"])
    from archscore.service import runner

    built = runner.worker_command(name=node)
    assert built[built.index("--hostname") + 1] == f"{node}@%h"


def test_trainer_consumes_the_training_queue_with_the_same_image(compose):
    trainer, worker = compose["services"]["trainer"], compose["services"]["worker"]
    command = _command(trainer)
    _cli_accepts(command)
    assert command[:2] == ["archscore", "worker"] and command[command.index("--queues") + 1] == "training"
    assert trainer["image"] == worker["image"] and trainer["build"] == worker["build"]
    assert "training@" in " ".join(trainer["healthcheck"]["test"])
    from archscore.workers.celery_app import app as celery

    assert celery.conf.task_routes["archscore.train_supernet"]["queue"] == "training"


def test_supernet_checkpoints_are_one_volume_shared_by_api_workers_and_trainer(compose, dockerfile):
    for name in ("api", "worker", "trainer"):
        service = compose["services"][name]
        folder = _env(service)[f"{ENV_PREFIX}SUPERNET_DIR"]
        mounts = {v.split(":")[1]: v.split(":")[0] for v in service["volumes"]}
        assert mounts.get(folder) == "supernets", (name, service["volumes"])
    assert "supernets" in compose["volumes"]
    runtime = " ".join(a for w, a in _runtime_stage(dockerfile) if w == "RUN")
    assert "mkdir -p /app/supernets" in runtime and "chown -R archscore:archscore /app" in runtime


def test_flower_only_in_a_profile(compose):
    flower = compose["services"]["flower"]
    assert flower["image"].startswith("mher/flower")
    assert "flower" in flower.get("profiles", [])
    broker = " ".join(_command(flower)) + " " + " ".join(_env(flower).values())
    assert "redis://redis:6379/0" in broker
    assert any(str(p).split(":")[-1] == "5555" for p in flower["ports"])
    for name, service in compose["services"].items():
        if name != "flower":
            assert not service.get("profiles"), f"{name} must start without a profile"


def test_compose_env_vars_are_settings_fields(compose, gpu, dockerfile):
    fields = set(Settings.model_fields)
    used = set()
    for document in (compose, gpu):
        for service in document["services"].values():
            used |= {k for k in _env(service) if k.startswith(ENV_PREFIX)}
    for word, args in _instructions(dockerfile):
        if word == "ENV":
            used |= {m for m in re.findall(r"\b([A-Z_][A-Z0-9_]*)=", args) if m.startswith(ENV_PREFIX)}
    assert f"{ENV_PREFIX}REDIS_URL" in used and f"{ENV_PREFIX}DEVICE" in used
    unknown = sorted(v for v in used if v[len(ENV_PREFIX) :].lower() not in fields)
    assert not unknown, f"not Settings fields: {unknown} (fields: {sorted(fields)})"


# --------------------------------------------------------------------------- #
# docker-compose.gpu.yml
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("name", ["worker", "trainer"])
def test_gpu_override_reserves_an_nvidia_device(gpu, name):
    worker = gpu["services"][name]
    devices = worker["deploy"]["resources"]["reservations"]["devices"]
    assert any(
        d.get("driver") == "nvidia" and d.get("count") in (1, "1") and "gpu" in d.get("capabilities", [])
        for d in devices
    ), devices
    assert _env(worker)[f"{ENV_PREFIX}DEVICE"] == "cuda"


def test_gpu_override_builds_a_cuda_image_for_both(gpu, dockerfile):
    api, worker = gpu["services"]["api"], gpu["services"]["worker"]
    assert api["build"] == worker["build"] and api.get("image") == worker.get("image")
    args = worker["build"]["args"]
    assert "cuda" in args["BASE_IMAGE"]
    declared = {a.split("=")[0] for word, a in _instructions(dockerfile) if word == "ARG"}
    assert set(args) <= declared, f"build args not declared in the Dockerfile: {set(args) - declared}"
    assert "deploy" not in api, "only the worker runs torch"


# --------------------------------------------------------------------------- #
# Dockerfile and .dockerignore
# --------------------------------------------------------------------------- #
def test_dockerfile_base_image_argument(dockerfile):
    instructions = _instructions(dockerfile)
    first_from = next(i for i, (word, _) in enumerate(instructions) if word == "FROM")
    base_args = [a for word, a in instructions[:first_from] if word == "ARG"]
    assert "BASE_IMAGE=python:3.11-slim" in base_args
    # the first stage is the (empty by default) folder of wheels `--build-context wheels=DIR` replaces
    assert instructions[first_from][1] == "scratch AS wheels"
    assert ("FROM", "${BASE_IMAGE} AS base") in instructions
    assert "ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu" in dockerfile


def test_dockerfile_torch_is_the_lowest_version_pyproject_admits(dockerfile, pyproject):
    """The package asks for a range (it installs beside a user's own torch); the image installs the
    lowest version of that range, the one the tests run on."""
    [requirement] = [d for d in pyproject["project"]["dependencies"] if re.match(r"torch\b", d)]
    lowest = re.fullmatch(r"torch>=([0-9.]+)", requirement.split(";")[0].replace(" ", "")).group(1)
    pin = f"torch=={lowest}.0" if lowest.count(".") == 1 else f"torch=={lowest}"
    assert pin == "torch==2.13.0"
    assert f"ARG TORCH_VERSION={pin.removeprefix('torch==')}" in dockerfile
    assert dockerfile.count('"torch==${TORCH_VERSION}"') == 2  # from the wheels folder, else from the index


def test_dockerfile_runtime(dockerfile):
    runtime = _runtime_stage(dockerfile)
    words = [w for w, _ in runtime]
    users = [a for w, a in runtime if w == "USER"]
    assert users and users[-1] not in ("root", "0"), "the image must run as a non-root user"
    assert ("WORKDIR", "/app") in runtime
    assert ("EXPOSE", "8000") in runtime
    assert "--no-cache-dir" in dockerfile
    assert not re.search(r"\b(build-essential|gcc|g\+\+)\b", dockerfile), "no build tools in the image"

    [healthcheck] = [a for w, a in runtime if w == "HEALTHCHECK"]
    assert "/healthz" in healthcheck and "urllib" in healthcheck and "curl" not in healthcheck
    probe = _exec_form(healthcheck[healthcheck.index("CMD") + 3 :].strip())
    assert probe[:2] == ["python", "-c"]
    compile(probe[2], "<healthcheck>", "exec")  # the probe is valid Python

    [cmd] = [a for w, a in runtime if w == "CMD"]
    assert words[-1] == "CMD"
    command = _exec_form(cmd)
    assert command == ["archscore", "api", "--host", "0.0.0.0", "--port", "8000"]
    _cli_accepts(command)


def _pattern_regex(pattern: str) -> str:
    """A .dockerignore pattern as a regex: ``*`` and ``?`` stay within a path element, ``**`` crosses them."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        elif pattern[i] == "[" and "]" in pattern[i + 1 :]:
            close = pattern.index("]", i + 1)
            body = pattern[i + 1 : close]
            out, i = out + "[" + ("^" + body[1:] if body.startswith("!") else body) + "]", close + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return out


def _ignored(patterns: list[str], path: str) -> bool:
    """Docker's rule: the last matching pattern wins; a pattern that matches a parent matches its children."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        regex = _pattern_regex(pattern.lstrip("!").strip("/"))
        if any(re.fullmatch(regex, prefix) for prefix in prefixes):
            ignored = not negate
    return ignored


def test_dockerignore_keeps_what_the_dockerfile_copies(dockerfile):
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    copied = []
    for word, args in _instructions(dockerfile):
        if word == "COPY" and "--from" not in args:
            copied += args.split()[:-1]
    assert {"pyproject.toml", "README.md", "estimators", "service", "workers"} <= set(copied)
    for source in copied:
        assert not _ignored(patterns, source), f".dockerignore drops {source}, which the Dockerfile copies"
    for path in ("estimators/data/cifar10_subset.npz", "service/app.py", "workers/tasks.py"):
        assert not _ignored(patterns, path), path
    for path in (
        ".venv/bin/python",
        ".git/HEAD",
        "tests/test_deploy.py",
        "service/__pycache__/app.cpython-311.pyc",
        ".archscore/redis/appendonly.aof",
        "out/eval300.json",
    ):
        assert _ignored(patterns, path), f".dockerignore should drop {path}"


def test_dockerfile_installs_the_packages_pyproject_declares(dockerfile, pyproject):
    packages = set(pyproject["tool"]["setuptools"]["package-dir"].values())  # the folders the packages come from
    copied = {
        source.rstrip("/")
        for w, a in _instructions(dockerfile)
        if w == "COPY" and "--from" not in a
        for source in a.split()[:-1]
    }
    assert packages <= copied, f"packages not copied into the image: {packages - copied}"
    assert pyproject["project"]["readme"] in copied
    assert set(pyproject["project"]["license-files"]) <= copied


# --------------------------------------------------------------------------- #
# The entry point the image runs
# --------------------------------------------------------------------------- #
def test_cli_check_is_not_vacuous():
    with pytest.raises(Exception):
        _cli_accepts(["archscore", "api", "--no-such-option"])
    with pytest.raises(AssertionError):
        _cli_accepts(["archscore", "no-such-command"])


def test_archscore_entry_point_resolves(pyproject):
    target = pyproject["project"]["scripts"]["archscore"]
    module_name, _, attr = target.partition(":")
    app = getattr(importlib.import_module(module_name), attr)
    assert isinstance(app, typer.Typer)
    commands = typer.main.get_command(app).commands
    assert {"up", "api", "worker"} <= set(commands)
    params = {p.name for p in commands["api"].params}
    assert {"host", "port"} <= params
