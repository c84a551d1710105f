"""Which of the node's processes run: pid files in ``state/run/`` (README "Operating").

``diwan up`` writes ``up.pid``; gunicorn writes ``admin.pid`` and ``peer.pid``
(its ``pidfile`` setting); the scheduler writes ``scheduler.pid``. A pid file
counts only while its process is alive and still runs that role (its command
line is checked, so a pid reused by another program is not mistaken for one).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import psutil

from .datadir import DataDir
from .fsio import remove_quiet, write_atomic

ROLES = ("up", "admin", "peer", "scheduler")
# A word each role's command line contains.
_MARKERS = {"up": "up", "admin": "create_admin_app", "peer": "create_peer_app",
            "scheduler": "scheduler"}


def run_dir(dd: DataDir) -> Path:
    """``<data dir>/state/run`` (created 0700 if missing)."""
    path = dd.state / "run"
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def pid_path(dd: DataDir, role: str) -> Path:
    """The pid file of ``role`` (one of :data:`ROLES`; ``ValueError`` otherwise)."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}")
    return run_dir(dd) / f"{role}.pid"


def write_pid(dd: DataDir, role: str, pid: int | None = None) -> Path:
    """Record this process (or ``pid``) as ``role``; returns the pid file (0600)."""
    path = pid_path(dd, role)
    write_atomic(path, f"{pid or os.getpid()}\n".encode("ascii"), mode=0o600)
    return path


def clear_pid(dd: DataDir, role: str, pid: int | None = None) -> None:
    """Remove ``role``'s pid file if it still names this process (or ``pid``)."""
    if read_pid(dd, role) == (pid or os.getpid()):
        remove_quiet(pid_path(dd, role))


def read_pid(dd: DataDir, role: str) -> int | None:
    """The pid in ``role``'s file, or None (missing or not a number)."""
    try:
        text = pid_path(dd, role).read_text("ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() and 0 < len(text) < 10 else None


def running(dd: DataDir, role: str) -> int | None:
    """The pid of ``role`` if that process is alive and runs that role, else None."""
    pid = read_pid(dd, role)
    if pid is None:
        return None
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
        cmdline = " ".join(proc.cmdline())
    except (psutil.Error, OSError):
        return None
    return pid if _MARKERS[role] in cmdline else None


def processes(dd: DataDir) -> dict[str, int | None]:
    """``{role: pid or None}`` for every role."""
    return {role: running(dd, role) for role in ROLES}


def stop(dd: DataDir, *, timeout: float = 15.0) -> dict[str, int]:
    """Stop the node of ``dd`` gracefully: SIGTERM to ``diwan up`` (which stops the rest),
    or to each process found; waits up to ``timeout`` seconds, then SIGKILLs what is left.
    Returns ``{role: pid}`` of what was stopped."""
    found = {role: pid for role, pid in processes(dd).items() if pid is not None}
    targets = [found["up"]] if "up" in found else list(found.values())
    procs = []
    for pid in targets:
        with contextlib.suppress(psutil.Error):
            proc = psutil.Process(pid)
            proc.terminate()
            procs.append(proc)
    _, alive = psutil.wait_procs(procs, timeout=timeout)
    for proc in alive:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    rest = [psutil.Process(pid) for role, pid in found.items()
            if pid not in targets and psutil.pid_exists(pid)]
    _, alive = psutil.wait_procs(rest, timeout=timeout)
    for proc in alive:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    return found
