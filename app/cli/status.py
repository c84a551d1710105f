"""``diwan status`` and ``diwan stop``: what runs in a data directory, and stopping it."""

from __future__ import annotations

import os
from typing import Any

import click

from ..core.base import runstate
from ..core.base.datadir import DataDir
from ..core.identity.petnames import short
from ..core.network.contacts import Contacts
from ..core.network.views import contact_view
from ..core.upkeep.doctor import report
from .base import EXIT_BAD_INPUT, Cli, main, pass_cli, table, when
from .node import describe

PROCESSES = ("admin", "peer", "scheduler")


def disk_used(dd: DataDir) -> dict[str, int]:
    """``{"files": n, "bytes": on-disk bytes}`` of ``posts/`` (allocated blocks, as du)."""
    files = used = 0
    for folder, _, names in os.walk(dd.posts):
        for name in names:
            try:
                st = os.stat(os.path.join(folder, name), follow_symlinks=False)
            except OSError:
                continue
            files += 1
            used += st.st_blocks * 512
    return {"files": files, "bytes": used}


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n} B"


def node_status(cli: Cli) -> dict[str, Any]:
    """The JSON shape of ``diwan status``."""
    dd = cli.datadir()
    pids = runstate.processes(dd)
    names = cli.names()
    own = cli.identities().own_fingerprints()
    health = report(dd)  # what diwan doctor checks: exposure, secrets, a full disk
    return {
        **describe(dd),
        "running": all(pids[p] is not None for p in PROCESSES),
        "processes": _processes(pids),
        "identities": [{"fingerprint": fp, "display_name": names(fp)} for fp in own],
        "contacts": [contact_view(dd, c, names) for c in Contacts(dd).list()],
        "posts": disk_used(dd),
        **{k: health[k] for k in ("problems", "admin_exposed", "disk")},
    }


def _processes(pids: dict[str, int | None]) -> dict[str, dict[str, Any]]:
    """``{role: {"pid", "running"}}``: the processes part of ``diwan status``."""
    return {role: {"pid": pid, "running": pid is not None} for role, pid in pids.items()}


def _process_lines(procs: dict[str, dict[str, Any]]) -> list[str]:
    """A line for each of admin, peer and scheduler: its pid, or stopped."""
    return [f"  {role:<10} {'pid ' + str(procs[role]['pid']) if procs[role]['pid'] else 'stopped'}"
            for role in PROCESSES]


def _human(st: dict[str, Any]) -> list[str]:
    procs = st["processes"]
    lines = [f"node in {st['data_dir']}: "
             + ("running" if st["running"] else "not running" if not any(
                 procs[p]["running"] for p in PROCESSES) else "partly running")]
    lines += _process_lines(procs)
    lines.append(f"admin API:   {st['admin_url']}")
    peers = st["peer_urls"] or [st["peer_url"]]
    lines += [f"peer API:    {peers[0]}"] + [f"             {u}" for u in peers[1:]]
    ids = ", ".join(i["display_name"] if i["display_name"] == short(i["fingerprint"])
                    else f"{i['display_name']} ({short(i['fingerprint'])})"
                    for i in st["identities"]) or "none yet (diwan identity create)"
    lines.append(f"identities:  {ids}")
    rows = [[c["display_name"], c["sync"]["state"], when(c["sync"]["last_success"]),
             c["sync"]["last_error"] or "-"] for c in st["contacts"]]
    lines += table(["CONTACT", "SYNC", "LAST SUCCESS", "LAST ERROR"], rows) if rows \
        else ["contacts:    none yet (diwan contact add FP ADDRESS)"]
    lines.append(f"posts:       {st['posts']['files']} files, "
                 f"{_size(st['posts']['bytes'])} on disk")
    if st["disk"]["free_bytes"] is not None:
        lines.append(f"disk free:   {_size(st['disk']['free_bytes'])}"
                     + (" (FULL: writes answer 507)" if st["disk"]["full"] else ""))
    return [f"WARNING: {p}" for p in st["problems"]] + lines


@main.command()
@pass_cli
def status(cli: Cli) -> None:
    """Which of admin, peer and scheduler run (with pids), where to reach them, the
    identities, contacts with their last sync, the disk the posts use and its free space,
    and warnings (an exposed admin API, a full disk; see diwan doctor)."""
    dd, broken = cli.datadir_or_defaults()
    if broken is not None:  # only the processes: everything else depends on the settings
        pids = runstate.processes(dd)
        procs = _processes(pids)
        cli.emit({"data_dir": str(dd.root), "settings_error": broken, "processes": procs},
                 [f"node in {dd.root}: the settings do not load", *_process_lines(procs),
                  f"problem: {broken}"]
                 + (["(running processes keep the settings they started with; fix the "
                     "setting, or stop them with 'diwan stop')"]
                    if any(pid for pid in pids.values()) else []))
        raise SystemExit(EXIT_BAD_INPUT)
    st = node_status(cli)
    cli.emit(st, _human(st))


@main.command()
@click.option("--timeout", type=click.FloatRange(min=0), default=15.0, show_default=True,
              help="Seconds to wait for a graceful stop before killing what is left.")
@pass_cli
def stop(cli: Cli, timeout: float) -> None:
    """Stop the node of this data directory gracefully (SIGTERM, then SIGKILL after
    --timeout seconds). Stopping a node that does not run is not an error."""
    dd, broken = cli.datadir_or_defaults()  # a broken diwan.toml must not keep it running
    stopped = runstate.stop(dd, timeout=timeout)
    human = [f"stopped {', '.join(f'{r} (pid {p})' for r, p in stopped.items())}"
             if stopped else f"no node runs in {dd.root}"]
    if broken is not None:
        human.append(f"warning: {broken}")
    cli.emit({"stopped": stopped, **({"settings_error": broken} if broken else {})}, human)
