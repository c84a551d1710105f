"""A full disk is a clear, temporary state: writes fail with 507, reads keep working.

A write that fails because the data directory's file system (or the user's
quota) is full raises :class:`OSError` with ``ENOSPC``/``EDQUOT``, or, from
SQLite, ``sqlite3.OperationalError("database or disk is full")``.
:func:`is_full_error` recognises both; the web layer answers them with 507
and :func:`disk_full` (naming the data directory and its free space). The
atomic write helpers leave no torn file behind (a temporary file is removed,
the old file stays), so the node recovers by itself when space returns.
"""

from __future__ import annotations

import errno
import shutil
import sqlite3
from pathlib import Path
from typing import Any

from .errors import DiskFull

LOW = 1024 * 1024  # bytes free below which the status calls the file system full
FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


def is_full_error(exc: BaseException) -> bool:
    """True for "no space left" and "quota exceeded", from the OS or from SQLite."""
    if isinstance(exc, OSError):
        return exc.errno in FULL_ERRNOS
    if isinstance(exc, sqlite3.OperationalError):
        return "disk is full" in str(exc) or getattr(exc, "sqlite_errorcode", None) == 13
    return False


def usage(root: Path) -> dict[str, Any]:
    """``{"free_bytes", "total_bytes", "full"}`` for the file system holding ``root``."""
    try:
        total, _, free = shutil.disk_usage(root)
    except OSError:
        return {"free_bytes": None, "total_bytes": None, "full": False}
    return {"free_bytes": free, "total_bytes": total, "full": free < LOW}


def disk_full(root: Path) -> DiskFull:
    """The error a write on a full file system becomes (HTTP 507)."""
    free = usage(root)["free_bytes"]
    shown = "unknown" if free is None else f"{free} bytes"
    return DiskFull(f"no space left for the data directory {root} (free: {shown}); "
                    "nothing was stored. Free some space: reads still work and the node "
                    "carries on by itself")
