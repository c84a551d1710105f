"""Which of the node's processes run: pid files in ``state/run/`` (README "Operating").

``diwan up`` writes ``up.pid``; gunicorn writes ``admin.pid`` and ``peer.pid``
(its ``pidfile`` setting); the scheduler writes ``scheduler.pid``. A pid file
counts only while its process is alive and still runs that role (its command
line is checked, so a pid reused by another program is not mistaken for one).

Each gunicorn master also records the host and port it bound in
``<role>.bind.json`` (``{"host": ..., "port": ...}``): a node started with
``DIWAN_ADMIN_PORT`` or ``DIWAN_PEER_PORT`` in its environment listens
elsewhere than ``diwan.toml`` says, and ``diwan status`` and ``diwan open``, run
from another shell, show where it really is (:func:`effective_settings`).
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

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
    import psutil  # here, not at import: the gunicorn masters and workers import this module

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
    import psutil  # see running()

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


BOUND_ROLES = ("admin", "peer")


def record_bind(dd: DataDir, role: str, host: str, port: int) -> Path:
    """Record the host and port ``role`` (admin or peer) listens on; returns the file (0600).

    ``ValueError`` for another role."""
    if role not in BOUND_ROLES:
        raise ValueError(f"unknown role {role!r}")
    path = run_dir(dd) / f"{role}.bind.json"
    doc = json.dumps({"host": str(host), "port": int(port)}).encode("ascii")
    write_atomic(path, doc + b"\n", mode=0o600)
    return path


def bound(dd: DataDir, role: str) -> tuple[str, int] | None:
    """(host, port) ``role`` recorded while it runs; None if it does not run or the record
    is missing or malformed."""
    if running(dd, role) is None:
        return None
    try:
        doc = json.loads((run_dir(dd) / f"{role}.bind.json").read_text("ascii"))
        host, port = doc["host"], doc["port"]
    except (OSError, ValueError, KeyError, TypeError, UnicodeDecodeError):
        return None
    if not isinstance(host, str) or type(port) is not int or not 0 < port < 65536:
        return None
    return host, port


def effective_settings(dd: DataDir) -> dict[str, Any]:
    """``dd.settings`` with the host and port of each running app as it recorded them."""
    settings = dict(dd.settings)
    for role in BOUND_ROLES:
        found = bound(dd, role)
        if found is not None:
            settings[f"{role}_host"], settings[f"{role}_port"] = found
    return settings
