"""Hosts as Linux network namespaces (root only): a bridge on the first host, one veth link from each other
host to it, and one from this process's namespace, so the test itself reaches the first host's services.
A host's link can be cut (``ip link set ... down``) and restored. Nothing else of the machine's network is
touched: every interface lives in a namespace made here, except this side of the test's own link."""

from __future__ import annotations

import ipaddress
import os
import random
import secrets
import shutil
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

BRIDGE = "br0"
LINK = "eth0"  # a host's end of its link


def unavailable() -> str | None:
    """Why namespaces cannot be made here (None: they can): not root, or no iproute2 with `ip netns`."""
    if os.geteuid() != 0:
        return "needs root (network namespaces: ip netns)"
    if shutil.which("ip") is None:
        return "needs iproute2's `ip` command (ip netns)"
    return None


def port_of(host: str) -> str:
    """The bridge's end of a host's link, in the first host."""
    return f"v{host}"[:15]


def ip(*args: str) -> str:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


def _free_subnet() -> ipaddress.IPv4Network:
    """A /24 of 10.0.0.0/8 that no interface of this namespace is on."""
    used = [ipaddress.ip_interface(w).network for w in ip("-4", "-o", "addr").split() if "/" in w and w[0].isdigit()]
    for _ in range(100):
        net = ipaddress.ip_network(f"10.{random.randint(100, 250)}.{random.randint(0, 255)}.0/24")
        if not any(net.overlaps(u) for u in used):
            return net
    raise RuntimeError("no free /24 in 10.0.0.0/8")


@dataclass
class Hosts:
    """``names[host]``: the namespace; ``addresses[host]``: its address. The first host holds the bridge."""

    names: dict[str, str]
    addresses: dict[str, str]
    hub: str  # the first host
    test_link: str  # this namespace's end of the link to the first host
    made: list[str] = field(default_factory=list)

    def command(self, host: str, argv: list[str]) -> list[str]:
        """``argv`` run inside ``host`` (``ip netns exec`` replaces itself with it: the pid is the command's)."""
        return ["ip", "netns", "exec", self.names[host], *argv]

    def cut(self, host: str) -> None:
        """Unplug the host at the far end: its port leaves the bridge. Its own link stays up, so nothing tells
        it: its packets are dropped and its connections neither fail nor reset (a switch or route that
        went away), until its timeouts say so."""
        ip("-n", self.names[self.hub], "link", "set", port_of(host), "nomaster")

    def restore(self, host: str) -> None:
        ip("-n", self.names[self.hub], "link", "set", port_of(host), "master", BRIDGE)

    def pids(self, host: str) -> list[int]:
        """Processes still running inside the host (all started by the test)."""
        out = subprocess.run(["ip", "netns", "pids", self.names[host]], capture_output=True, text=True).stdout
        return [int(p) for p in out.split()]


@contextmanager
def hosts(first: str, *others: str) -> Iterator[Hosts]:
    """Namespaces for ``first`` (with the bridge) and ``others``; on exit, whatever still runs in them is
    killed and they are deleted, with their links, whatever happened."""
    tag = secrets.token_hex(3)
    subnet = _free_subnet()
    addresses = [str(a) for a in subnet.hosts()]
    names = {h: f"as{tag}{h}"[:15] for h in (first, *others)}
    hub = names[first]
    test_link = f"as{tag}t"
    made = Hosts(names, {}, first, test_link)
    try:
        for name in names.values():
            ip("netns", "add", name)
            made.made.append(name)
            ip("-n", name, "link", "set", "lo", "up")
        ip("-n", hub, "link", "add", BRIDGE, "type", "bridge")
        ip("-n", hub, "addr", "add", f"{addresses[0]}/24", "dev", BRIDGE)
        ip("-n", hub, "link", "set", BRIDGE, "up")
        made.addresses[first] = addresses[0]
        for i, host in enumerate(others, start=1):
            port = port_of(host)
            ip("link", "add", port, "netns", hub, "type", "veth", "peer", "name", LINK, "netns", names[host])
            ip("-n", hub, "link", "set", port, "master", BRIDGE, "up")
            ip("-n", names[host], "addr", "add", f"{addresses[i]}/24", "dev", LINK)
            ip("-n", names[host], "link", "set", LINK, "up")
            made.addresses[host] = addresses[i]
        ip("link", "add", test_link, "type", "veth", "peer", "name", "vtest", "netns", hub)
        ip("-n", hub, "link", "set", "vtest", "master", BRIDGE, "up")
        ip("addr", "add", f"{addresses[-1]}/24", "dev", test_link)
        ip("link", "set", test_link, "up")
        yield made
    finally:
        for host, name in names.items():
            if name in made.made:
                for pid in made.pids(host):
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
        subprocess.run(["ip", "link", "del", test_link], capture_output=True)  # gone with the hub's end too
        for name in made.made:
            subprocess.run(["ip", "netns", "del", name], capture_output=True)
