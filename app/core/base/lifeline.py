"""One node per data directory, free ports, and processes that die with their supervisor.

- :class:`NodeLock`: ``diwan up`` holds an exclusive ``flock`` on
  ``locks/node.lock`` for as long as the node runs; a second ``diwan up`` on the
  same directory gets :class:`AlreadyRunning` naming the running node's PID and
  URLs (kept in ``state/node.json``). The kernel drops the lock when its last
  holder exits, however it exits.
- :func:`check_port`: a port already in use is a one-line :class:`PortInUse`
  naming the port and the setting to change, before anything starts.
- :func:`exit_with_supervisor`: the admin, peer and scheduler processes end
  when ``diwan up`` dies, even by SIGKILL (honcho starts each in its own
  session, so nothing else would stop them); they hold a shared lock on
  ``locks/node.running`` (:func:`hold_running`) until they exit, and a new
  ``diwan up`` waits for it (:func:`wait_for_leftovers`) before it starts.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import select
import signal
import socket
import threading
import time
from pathlib import Path
from typing import Any

from .errors import AlreadyRunning, PortInUse

LOCK_NAME = "node.lock"
RUNNING_NAME = "node.running"
INFO_NAME = "node.json"
SUPERVISOR_ENV = "DIWAN_SUPERVISOR_PID"


class NodeLock:
    """The exclusive lock of a running node on its data directory (``locks/node.lock``)."""

    def __init__(self, locks: Path, state: Path) -> None:
        self.path = locks / LOCK_NAME
        self.info_path = state / INFO_NAME
        self.fd: int | None = None

    def acquire(self, info: dict[str, Any]) -> int:
        """Take the lock and record ``info`` (with this PID); return the lock's fd.

        Raises :class:`AlreadyRunning` (with the holder's PID and URLs) if held.
        The fd is inheritable so that a child given it keeps the lock held.
        """
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise
            raise AlreadyRunning(self._holder()) from None
        os.set_inheritable(fd, True)
        self.fd = fd
        text = json.dumps({"pid": os.getpid(), "started": int(time.time()), **info})
        tmp = self.info_path.with_name(f".tmp-{INFO_NAME}")
        tmp.write_text(text + "\n")
        os.replace(tmp, self.info_path)
        return fd

    def _holder(self) -> str:
        try:
            info = json.loads(self.info_path.read_text())
            return (f"a node already runs in {self.info_path.parent.parent} (PID {info['pid']}, "
                    f"admin {info.get('admin_url')}, peer {info.get('peer_url')}); "
                    "see diwan status, stop it with diwan stop")
        except (OSError, ValueError, KeyError, TypeError):
            return (f"a node already runs in {self.info_path.parent.parent}; see diwan status, "
                    "stop it with diwan stop")

    def release(self) -> None:
        """Drop the lock (also dropped by the kernel when the process exits)."""
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def bind_hosts(host: str) -> list[str]:
    """The addresses to bind for a configured ``host``: the IPv6 wildcard ``::`` is bound
    dual-stack where the system allows it (``["::"]``; ``["::", "0.0.0.0"]`` where
    sockets are IPv6-only by default, ``net.ipv6.bindv6only = 1``) and falls back to
    ``["0.0.0.0"]`` on a system without IPv6. Any other host is bound as it is."""
    if host != "::":
        return [host]
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
            v6only = sock.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY)
            sock.bind(("::", 0))
    except OSError:
        return ["0.0.0.0"]
    return ["::", "0.0.0.0"] if v6only else ["::"]


def check_port(host: str, port: int, setting: str) -> None:
    """Raise :class:`PortInUse` if ``host:port`` cannot be bound now (``setting`` names it);
    ``::`` is checked as :func:`bind_hosts` binds it."""
    for one in bind_hosts(host.strip("[]")):
        family = socket.AF_INET6 if ":" in one else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((one, port))
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE:
                    raise
                raise PortInUse(f"port {port} on {host} is in use; set {setting} in "
                                f"diwan.toml (or DIWAN_{setting.upper()}) to a free port"
                                ) from None


def hold_running(locks: Path) -> int:
    """Take a shared lock on ``locks/node.running`` for this process's lifetime; return its fd.

    Every node process (gunicorn masters and their workers, the scheduler)
    holds it, so ``diwan up`` can tell whether processes of an earlier node are
    still running on the directory.
    """
    fd = os.open(locks / RUNNING_NAME, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_SH)
    return fd


def hold_sole(locks: Path, name: str) -> int | None:
    """Take an exclusive lock on ``locks/<name>.lock`` for this process's lifetime and
    return its fd, or None if another process holds it (one scheduler per data
    directory: a second one started by hand synced the same directory at once and, on
    exiting, took the first one's pid file with it; found by the stop 21 tester)."""
    fd = os.open(locks / f"{name}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def wait_for_leftovers(locks: Path, timeout: float) -> None:
    """Wait until no node process holds ``locks/node.running``; :class:`AlreadyRunning` after
    ``timeout`` seconds (processes of a node whose supervisor died are still there)."""
    fd = os.open(locks / RUNNING_NAME, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise AlreadyRunning("processes of an earlier node still run on this data "
                                         "directory; stop them first") from None
                time.sleep(0.1)
    finally:
        os.close(fd)


def exit_with_supervisor(sig: int = signal.SIGTERM, environ: Any = os.environ) -> None:
    """Send ``sig`` to this process when the node's supervisor dies, however it dies.

    The supervisor (``diwan up``) puts its PID in ``DIWAN_SUPERVISOR_PID``; a
    daemon thread waits on a pidfd of it (Linux), else polls it every second.
    Without the variable (systemd units) nothing is watched.
    """
    text = environ.get(SUPERVISOR_ENV, "")
    if not text.isdigit():
        return
    pid = int(text)
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        os.kill(os.getpid(), sig)  # already gone
        return
    except (OSError, AttributeError):
        pidfd = None

    def watch() -> None:
        if pidfd is not None:
            select.select([pidfd], [], [])
        else:
            while _alive(pid):
                time.sleep(1.0)
        os.kill(os.getpid(), sig)

    threading.Thread(target=watch, name="exit-with-supervisor", daemon=True).start()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
