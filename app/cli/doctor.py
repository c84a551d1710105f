"""``diwan doctor``: the checks the node makes on start, reported (and ``--repair``-ed)."""

from __future__ import annotations

import click

from ..core.base import permissions
from ..core.base.datadir import DataDir
from ..core.upkeep.doctor import report
from .base import Cli, CliError, main, pass_cli


@main.command()
@click.option("--repair", is_flag=True,
              help="chmod secrets that are open to other users to 0600 (directories 0700).")
@pass_cli
def doctor(cli: Cli, repair: bool) -> None:
    """Check the data directory: settings, admin exposure, secret permissions, free space.

    Reads only (it opens the directory without the checks that would refuse
    to start); exits 1 if anything is wrong. ``--repair`` fixes the modes of
    secrets that belong to this user first.
    """
    dd = DataDir(cli.data_dir)  # settings are validated here: a bad one is one error line
    repaired = [str(f.path) for f in permissions.repair(dd.root)] if repair else []
    found = report(dd) | {"repaired": repaired}
    disk = found["disk"]
    lines = [f"repaired: {p}" for p in repaired] + [f"problem: {p}" for p in found["problems"]]
    lines += [f"data dir:  {found['data_dir']}",
              f"disk free: {disk['free_bytes']} of {disk['total_bytes']} bytes",
              "scheduler: " + ("never seen" if found["scheduler_seen"] is None
                               else f"alive {found['scheduler_seen']} s ago"),
              "ok" if found["ok"] else f"{len(found['problems'])} problem(s)"]
    cli.emit(found, lines)
    if not found["ok"]:
        raise CliError("the data directory has problems (see above)")
