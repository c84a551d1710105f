"""When this process's automatic index repair may run next (the throttle of
:func:`app.core.posts.reconcile.auto_repair`), and how to make it run at once.

Kept apart from :mod:`.reconcile` so that :mod:`.ingest` (which reconcile imports)
can ask for a prompt repair after an index write failed, without an import cycle.
"""

from __future__ import annotations

import threading

from ..base.datadir import DataDir
from .indexschema import DB_NAME

_last_run: dict[str, float] = {}  # index path -> time.monotonic() of the last repair
_lock = threading.Lock()


def claim(key: str, now: float, interval: float, *, force: bool = False) -> bool:
    """True (and the run recorded at ``now``) if a repair of the index at ``key`` may run:
    ``force``, or none ran in this process within ``interval`` seconds."""
    with _lock:
        if not force and now - _last_run.get(key, float("-inf")) < interval:
            return False
        _last_run[key] = now
        return True


def forget(key: str) -> None:
    """Let the next query repair the index at ``key`` whatever the throttle says."""
    with _lock:
        _last_run.pop(key, None)


def repair_soon(dd: DataDir) -> None:
    """Let this process's next query repair ``dd``'s index at once (an index write failed:
    posts are on disk that the index does not list yet)."""
    forget(str(dd.state / DB_NAME))
