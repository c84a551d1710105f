"""Network namespaces for tests of real networks: hosts, a switch, a router (Linux, root).

A :class:`Lab` makes namespaces named ``dw<random><name>`` (so parallel runs never
meet), links them with veth pairs, and deletes them all on :meth:`Lab.close`, killing
every process still inside first, whatever the test did. :class:`NsNode` is the
harness's :class:`Node` run inside a namespace: its Procfile processes start under
``ip netns exec``; the test's own HTTP requests to it go through a thread that has
entered the namespace (``setns``), so its admin API stays on that namespace's
127.0.0.1 and nothing is added to the machine's own network.
"""

from __future__ import annotations

import ctypes
import os
import secrets
import shutil
import signal
import subprocess
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import pytest
import requests

from .harness import Node

CLONE_NEWNET = 0x40000000
T = TypeVar("T")


def tool(name: str) -> str:
    """The full path of a system tool (also found in /usr/sbin and /sbin off the PATH)."""
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin") or name


def missing(*tools: str) -> list[str]:
    """What these tests need and this machine lacks: root, and each of ``tools``."""
    out = [] if os.geteuid() == 0 else ["root (network namespaces)"]
    return out + [t for t in tools if not os.path.isabs(tool(t))]


def require(*tools: str) -> None:
    """Skip (FAIL under CI=true) unless root and ``tools`` are here."""
    lacking = missing(*tools)
    if lacking:
        message = "needs " + ", ".join(lacking) + " (.ci/run installs them)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


def _enter(ns: str) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(f"/run/netns/{ns}", os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns into {ns} failed")
    finally:
        os.close(fd)


class Inside:
    """Runs calls in one thread that lives in namespace ``ns`` (its sockets are there)."""

    def __init__(self, ns: str) -> None:
        self.pool = ThreadPoolExecutor(1, initializer=_enter, initargs=(ns,))

    def call(self, fn: Callable[..., T], *args: Any, **kw: Any) -> T:
        return self.pool.submit(fn, *args, **kw).result()

    def close(self) -> None:
        self.pool.shutdown(wait=False)


class Lab:
    """Namespaces, links and processes of one test; :meth:`close` removes everything."""

    def __init__(self) -> None:
        self.prefix = "dw" + secrets.token_hex(2)
        self.names: list[str] = []
        self.procs: list[subprocess.Popen[bytes]] = []
        self.insides: list[Inside] = []

    def ns(self, name: str) -> str:
        full = self.prefix + name
        self.ip("netns", "add", full)
        self.names.append(full)
        self.ip("-n", full, "link", "set", "lo", "up")
        return full

    def ip(self, *args: str) -> None:
        subprocess.run([tool("ip"), *args], check=True, capture_output=True)

    def run(self, ns: str, *cmd: str, **kw: Any) -> subprocess.CompletedProcess[str]:
        return subprocess.run([tool("ip"), "netns", "exec", ns, *cmd], capture_output=True,
                              text=True, timeout=60, **kw)

    def popen(self, ns: str, *cmd: str, log: Path) -> subprocess.Popen[bytes]:
        with open(log, "ab") as out:
            proc = subprocess.Popen([tool("ip"), "netns", "exec", ns, *cmd], stdout=out,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True)
        self.procs.append(proc)
        return proc

    def link(self, a: str, a_dev: str, b: str, b_dev: str) -> None:
        """A veth pair between namespaces ``a`` and ``b``, both ends up."""
        self.ip("link", "add", "name", a_dev, "netns", a, "type", "veth", "peer", "name",
                b_dev, "netns", b)
        self.ip("-n", a, "link", "set", a_dev, "up")
        self.ip("-n", b, "link", "set", b_dev, "up")

    def switch(self) -> str:
        """A namespace holding one bridge, ``br0`` (multicast flooded to every port)."""
        sw = self.ns("sw")
        self.ip("-n", sw, "link", "add", "br0", "type", "bridge", "mcast_snooping", "0")
        self.ip("-n", sw, "link", "set", "br0", "up")
        return sw

    def plug(self, sw: str, host: str, cidr: str) -> None:
        """Connect ``host``'s ``eth0`` to the switch's bridge, with address ``cidr``."""
        port = host[len(self.prefix):][:10] + "p"
        self.link(host, "eth0", sw, port)
        self.ip("-n", sw, "link", "set", port, "master", "br0")
        self.ip("-n", host, "addr", "add", cidr, "dev", "eth0")

    def inside(self, ns: str) -> Inside:
        found = Inside(ns)
        self.insides.append(found)
        return found

    def close(self) -> None:
        for proc in self.procs:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(5)
        for inside in self.insides:
            inside.close()
        for ns in reversed(self.names):
            pids = subprocess.run([tool("ip"), "netns", "pids", ns], capture_output=True,
                                  text=True).stdout.split()
            for pid in pids:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except ProcessLookupError:
                    pass
            subprocess.run([tool("ip"), "netns", "del", ns], capture_output=True)


class NsNode(Node):
    """A harness :class:`Node` whose processes and test requests live in namespace ``ns``."""

    def __init__(self, lab: Lab, ns: str, root: Path, name: str, **kw: Any) -> None:
        super().__init__(root, name, **kw)
        self.ns = ns
        self.inside = lab.inside(ns)

    def admin(self, method: str, path: str, **kw: Any) -> requests.Response:
        return self.inside.call(super().admin, method, path, **kw)

    def peer(self, method: str, path: str, **kw: Any) -> requests.Response:
        return self.inside.call(super().peer, method, path, **kw)

    def _healthy(self) -> bool:
        return self.inside.call(super()._healthy)

    def _spawn(self, name: str, command: str) -> None:
        super()._spawn(name, f"exec {tool('ip')} netns exec {self.ns} bash -c {_quote(command)}")


def _quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"
