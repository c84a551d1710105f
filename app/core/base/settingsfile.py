"""Reading ``diwan.toml``, and keeping what it said when a node's server started.

A gunicorn master reads the settings once, checks them and forks its workers; a
worker that dies (killed, out of memory, past its timeout) is replaced by a fresh
fork that reads them again. Read from the file again, an edit made meanwhile that
does not check out made the new worker fail to boot, and gunicorn then stopped the
whole app, hours after the edit (found by the end-of-stop tester). So the masters
(``app/run/gunicorn_conf.py``) :func:`pin` the file's contents as they started with
them; their workers inherit the pin and read the same values, and an edit takes
effect when the node is restarted, as ``docs/architecture.md`` says of every
setting. Other processes (the CLI, the scheduler, tests) read the file each time.
"""

from __future__ import annotations

import os
import stat
import tomllib
from pathlib import Path
from typing import Any

from .errors import BadInput

MAX_BYTES = 1 << 20  # a diwan.toml with every setting is ~13 KiB; a larger one is not one
_pinned: dict[Path, dict[str, Any]] = {}


def read(path: Path, *, fresh: bool = False) -> dict[str, Any] | None:
    """The top-level table of the TOML file at ``path`` (as pinned, if it is and not
    ``fresh``), or None if there is no file. :class:`BadInput` for a file that is not
    UTF-8, does not parse as TOML, or cannot be read (a directory, no permission)."""
    found = _pinned.get(path.resolve()) if _pinned and not fresh else None
    if found is not None:
        return dict(found)
    if not path.exists():
        return None
    try:
        return tomllib.loads(_read_regular(path).decode("utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise BadInput(f"{path}: {exc}") from None
    except UnicodeDecodeError:
        raise BadInput(f"{path}: not UTF-8 text (a TOML file is UTF-8)") from None
    except OSError as exc:
        raise BadInput(f"{path} cannot be read: {exc.strerror or exc}") from None


def _read_regular(path: Path) -> bytes:
    """The bytes of the regular file at ``path``, at most :data:`MAX_BYTES`: opened without
    blocking (a FIFO in its place hung every command that read the settings, ``diwan
    stop`` too; found by the stop 21 tester). :class:`BadInput` for anything else."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise BadInput(f"{path} is not a regular file")
        chunks, size = [], 0
        while size <= MAX_BYTES and (chunk := os.read(fd, MAX_BYTES + 1 - size)):
            chunks.append(chunk)
            size += len(chunk)
        if size > MAX_BYTES:
            raise BadInput(f"{path} is larger than {MAX_BYTES // 1024} KiB: not a settings file")
        return b"".join(chunks)
    finally:
        os.close(fd)


def pin(path: Path) -> None:
    """From now on, in this process and the processes it forks, :func:`read` of ``path``
    gives what the file holds now (an empty table if there is no file)."""
    _pinned[path.resolve()] = read(path) or {}


def unpin_all() -> None:
    """Read every file afresh again (tests)."""
    _pinned.clear()
