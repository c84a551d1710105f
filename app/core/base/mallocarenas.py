"""How many malloc arenas a node process may use (glibc ``M_ARENA_MAX``).

glibc gives threads that allocate at the same time arenas of their own, up to eight
per core; each holds freed memory for reuse, so a gunicorn worker whose threads take
turns at a large job (a first sync: pages fetched ahead, checked, written, indexed)
grows by what several arenas keep. ``bench/bench_sync.py`` on the development machine:
the syncing worker's largest RSS was 58.8-61.3 MiB with glibc's default and
58.4-58.7 MiB with two arenas. The gunicorn masters (``app/run/gunicorn_conf.py``,
before they fork their workers, which inherit it) and the scheduler set it from the
``malloc_arena_max`` setting (default 2; 0 leaves glibc's default). Elsewhere than
glibc nothing is done.
"""

from __future__ import annotations

import ctypes

M_ARENA_MAX = -8  # glibc's malloc.h


def _libc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(None)
        libc.mallopt  # noqa: B018 - present in glibc (and musl, where it does nothing)
    except (OSError, AttributeError):
        return None
    return libc


def limit(count: int) -> bool:
    """Let this process (and the processes it forks later) use at most ``count`` malloc
    arenas; 0 leaves glibc's default. True if glibc took it."""
    libc = _libc()
    if count <= 0 or libc is None:
        return False
    return bool(libc.mallopt(M_ARENA_MAX, count))
