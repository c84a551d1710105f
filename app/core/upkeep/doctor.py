"""``diwan doctor``: what the node checks on start, reported without refusing.

:func:`report` returns one JSON-shaped mapping: the settings (validated when the
data directory was opened, and ``diwan.toml`` again as it is now: a running server keeps
the settings it started with, so an edit that breaks them shows here), whether the admin API is
deliberately exposed, each secret that is open to others (with the ``chmod``
that fixes it, :mod:`..base.permissions`), the free space of the data
directory's file system (a write on a full one answers 507, reads keep
working: :mod:`..base.diskspace`) and when the scheduler last said it was
alive.
"""

from __future__ import annotations

import time
from typing import Any

from ..base import config, diskspace, permissions
from ..base.datadir import DataDir
from ..base.errors import BadInput


def report(dd: DataDir) -> dict[str, Any]:
    """The node's health: ``{"ok": bool, "problems": [str], ...}`` (see the module doc)."""
    problems: list[str] = []
    if not (dd.root / config.CONFIG_FILE).exists():
        problems.append(f"{dd.root} has no {config.CONFIG_FILE}: the node runs on the settings "
                        f"it started with, or the defaults ('diwan init' writes the file)")
    else:
        try:  # the file as it is now, not as the running server pinned it
            config.load(dd.root, fresh=True)
        except BadInput as exc:
            problems.append(f"the settings do not load as they are now: {exc.message} (the "
                            "running processes keep those they started with; the next start "
                            "will refuse)")
    exposed = config.exposure_warning(dd.settings)
    if exposed:
        problems.append(exposed)
    found = permissions.check(dd.root)
    problems += [f.message() for f in found]
    disk = diskspace.usage(dd.root)
    if disk["full"]:
        problems.append(f"the file system of {dd.root} is full ({disk['free_bytes']} bytes "
                        "free): writes answer 507 until space is freed")
    return {"ok": not problems, "problems": problems, "data_dir": str(dd.root),
            "admin_exposed": exposed is not None,
            "secrets": [{"path": str(f.path), "problem": f.problem, "fix": f.fix}
                        for f in found],
            "disk": disk, "scheduler_seen": _scheduler_seen(dd)}


def _scheduler_seen(dd: DataDir) -> float | None:
    """Seconds since the scheduler's last heartbeat (None if never seen)."""
    try:
        stamp = float((dd.state / "scheduler.alive").read_text("ascii"))
    except (OSError, ValueError):
        return None
    return round(max(0.0, time.time() - stamp), 1)
