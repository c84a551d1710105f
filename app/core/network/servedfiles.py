"""Reading the post files of a page being served, with a bounded cache of recent ones.

Issue 14 ("a serving side that does not re-read what it just read"): most feed
requests ask for the same newest posts, so each peer process keeps the files it
served last, up to ``feed_cache_kib`` KiB (0: none), and serves them again
without opening them. A post file never changes: its name is the SHA-1 of its
bytes, and a changed or replaced post is a new file. The index lists the page
(:func:`app.core.posts.feedorder.feed_files`, with each size from :func:`size_of` for a
held file, else a ``stat``), so a copy is served only for a file the index still lists
and only at the size listed; a deleted post is not listed at all, and a file removed
behind the index's back leaves it at the next automatic repair (``reconcile_interval_ms``).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator, Sequence

from . import pages

log = logging.getLogger("diwan.feeds")

_files: dict[str, bytes] = {}  # path -> bytes, oldest first
_held = 0                      # bytes in _files
_lock = threading.Lock()


def page_records(paths: Sequence[tuple[int, str]], sizes: Sequence[int], *, cache_bytes: int
                 ) -> Iterator[bytes]:
    """Each post's record (:func:`pages.post_record`) in order: from the cache, else its
    file read once; a file gone or of another size than listed is left out (logged).

    ``paths``: (position, file path) pairs; ``sizes``: each file's size in bytes as
    listed; ``cache_bytes``: what this process may keep (files larger than a
    sixteenth of it are never kept).
    """
    for (position, path), size in zip(paths, sizes, strict=False):
        raw = _files.get(path)
        if raw is None or len(raw) != size:
            raw = _read(path, size)
            if raw is None:
                continue
            if 0 < size <= cache_bytes // 16:
                _keep(path, raw, cache_bytes)
        yield pages.post_record(raw, position)


def _read(path: str, size: int) -> bytes | None:
    """The file's bytes if it still has ``size`` of them, else None."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        raw = os.read(fd, size + 1)
    except OSError:
        return None
    finally:
        os.close(fd)
    if len(raw) != size:
        log.warning("not serving %s: it changed while being served", os.path.basename(path))
        return None
    return raw


def _keep(path: str, raw: bytes, cache_bytes: int) -> None:
    """Add a file, dropping the oldest until the cache holds at most ``cache_bytes``."""
    global _held
    with _lock:
        old = _files.pop(path, None)
        _held -= len(old) if old is not None else 0
        while _files and _held + len(raw) > cache_bytes:
            _held -= len(_files.pop(next(iter(_files))))
        _files[path] = raw
        _held += len(raw)


def size_of(path: str) -> int | None:
    """The size of the file at ``path`` if this process holds a copy of it, else None:
    a served file's size without a ``stat`` (it is listed by the index, so it was not
    deleted; one removed by hand leaves the index at its next automatic repair)."""
    raw = _files.get(path)
    return None if raw is None else len(raw)


def held() -> tuple[int, int]:
    """(files, bytes) this process holds (tests)."""
    with _lock:
        return len(_files), _held


def forget() -> None:
    """Drop every cached file (tests)."""
    global _held
    with _lock:
        _files.clear()
        _held = 0
