"""``diwan init`` and ``diwan up``: create a data directory and run the node in it.

``up`` runs the Procfile shipped in the package (``app/run/Procfile``: admin,
peer, scheduler) under honcho with the data directory as the working directory,
and records itself in ``state/run/up.pid`` for ``diwan status`` and ``diwan stop``.
It stays in front: SIGINT and SIGTERM go on to honcho, which stops the three processes; SIGHUP (the
terminal went away) is passed on as SIGTERM so nothing is left behind. It holds
the data directory's node lock (a second ``up`` names the running one), refuses
ports in use with the setting to change, and the three processes watch its PID
and stop when it dies, even by SIGKILL (``app/core/base/lifeline.py``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType
from typing import Any

import click

from ..core.base import config, runstate
from ..core.base.datadir import DataDir
from ..core.base.errors import NotFound
from ..core.base.lifeline import SUPERVISOR_ENV, NodeLock, check_port, wait_for_leftovers
from ..core.network.addresses import page_url, peer_urls, url
from ..core.network.reach import mapped_url
from ..run import PROCFILE
from .base import Cli, main, pass_cli
from .open import login_url

FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
LEFTOVER_WAIT = 30.0  # seconds to wait for the processes of a node whose supervisor died


def procfile() -> Path:
    """The Procfile shipped in the package; :class:`NotFound` if the install lacks it."""
    path = PROCFILE
    if not path.is_file():
        raise NotFound(f"no Procfile at {path}: this installation of Diwan is incomplete; "
                       "reinstall it, or on a server use the units in deploy/")
    return path


def describe(dd: DataDir) -> dict[str, Any]:
    """Where things are: data dir, config, token path, admin URL and the peer URLs (of
    the running apps where they recorded them, :func:`runstate.effective_settings`)."""
    s = runstate.effective_settings(dd)
    urls = peer_urls(s, mapped_url(dd, time.time()))  # a live router mapping comes first
    return {"data_dir": str(dd.root), "config": str(dd.root / config.CONFIG_FILE),
            "token": str(dd.token_path), "admin_url": url(s["admin_host"], s["admin_port"]),
            "page_url": page_url(s),
            "peer_url": urls[0] if urls else url(s["peer_host"], s["peer_port"]),
            "peer_urls": urls}


def _lines(info: dict[str, Any]) -> list[str]:
    peers = info["peer_urls"] or [info["peer_url"]]
    return [f"data dir:    {info['data_dir']}", f"config:      {info['config']}",
            f"admin token: {info['token']}", f"admin API:   {info['admin_url']}",
            f"web pages:   {info['page_url']}",
            f"peer API:    {peers[0]}" + ("  (friends use one of these)" if peers[1:] else ""),
            *[f"             {u}" for u in peers[1:]]]


@main.command()
@pass_cli
def init(cli: Cli) -> None:
    """Create the data directory (layout, diwan.toml, admin.token).

    Only what is missing is created; an existing directory is left as it is.
    """
    dd = DataDir(cli.data_dir)
    created = dd.initialise()
    info = describe(dd) | {"created": created}
    head = "initialised" if created else "already initialised (nothing changed)"
    cli.emit(info, [head] + _lines(info))


def node_env(root: Path) -> dict[str, str]:
    """The environment of the node's processes: the venv first on PATH."""
    env = dict(os.environ)
    bin_dir = str(Path(sys.executable).parent)  # not resolved: the venv's bin
    env.update(DIWAN_DATA_DIR=str(root),
               PATH=os.pathsep.join(filter(None, [bin_dir, env.get("PATH")])))
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def supervise(cmd: list[str], *, env: dict[str, str], cwd: Path,
              forwarded: list[int] | None = None) -> int:
    """Run ``cmd`` in front, passing stop signals on to it; return its exit status (128 +
    the signal's number if a signal ended it). Each signal passed on is appended to
    ``forwarded`` if given."""
    child: list[subprocess.Popen[bytes]] = []
    pending: list[int] = []

    def forward(signum: int, frame: FrameType | None) -> None:
        sig = signal.SIGTERM if signum == signal.SIGHUP else signum
        if forwarded is not None:
            forwarded.append(sig)
        if child:
            child[0].send_signal(sig)
        else:
            pending.append(sig)

    previous = {sig: signal.signal(sig, forward) for sig in FORWARDED}
    try:
        child.append(subprocess.Popen(cmd, env=env, cwd=cwd))
        for sig in pending:
            child[0].send_signal(sig)
        status = child[0].wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 128 - status if status < 0 else status


@main.command()
@pass_cli
@click.pass_context
def up(ctx: click.Context, cli: Cli) -> None:
    """Run admin, peer and scheduler in the foreground (Ctrl-C stops).

    Initialises the data directory first if needed, prints the admin URL and
    where the token is, then runs the Procfile with honcho.
    """
    dd = cli.datadir(create=True)
    path = procfile()
    info = describe(dd) | {"login_url": login_url(dd)}
    lock = NodeLock(dd.locks, dd.state)
    lock.acquire(info)  # one node per data directory: held until this process exits
    wait_for_leftovers(dd.locks, timeout=LEFTOVER_WAIT)
    for role in ("admin", "peer"):
        check_port(dd.settings[f"{role}_host"], dd.settings[f"{role}_port"], f"{role}_port")
    cli.emit(info, _lines(info) + [
        f"Send 'Authorization: Bearer <token>' with the token from {info['token']}.",
        f"Open {info['login_url']} to sign in to the pages (once, within "
        f"{dd.settings['web_login_code_ttl']} s; later: diwan open).",
        "Starting admin, peer and scheduler (Ctrl-C stops them)."])
    sys.stdout.flush()
    cmd = [sys.executable, "-m", "honcho", "start", "-f", str(path), "-d", str(dd.root)]
    runstate.write_pid(dd, "up")
    stops: list[int] = []
    try:
        env = node_env(dd.root) | {SUPERVISOR_ENV: str(os.getpid())}  # they die with us
        status = supervise(cmd, env=env, cwd=dd.root, forwarded=stops)
    finally:
        runstate.clear_pid(dd, "up")
    # A stop asked for (Ctrl-C, 'diwan stop', systemctl stop) that ended the node is a clean
    # end, not a failure ('make run' said "Error 143" after 'diwan stop').
    ctx.exit(0 if stops and status in (0, *(128 + s for s in stops)) else status)
