"""Data directories for tests: make one, name an own identity in it, and take its state.

- :func:`make_datadir`: an initialised data directory with settings overrides.
- :data:`PASSWORD`: the password of the own identities the fixtures create.
- :class:`OwnIdentity`: an own identity's fingerprint, password and key paths.
- :func:`snapshot`: every file and folder under a directory, with its bytes,
  mode and mtime, so ``snapshot(root) == before`` shows that nothing was
  written, replaced, touched, added or removed (not even a temporary file:
  a folder's mtime moves when a name in it comes or goes).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.core.base.datadir import DataDir

PASSWORD = "correct horse battery staple"  # 12+ characters, as new passwords must be

Entry = tuple[int, int, bytes | None]  # (mode, mtime_ns, bytes; None for a folder)


def make_datadir(root: Path, **settings: Any) -> DataDir:
    """An initialised data directory at ``root`` with ``settings`` as overrides."""
    dd = DataDir(root, settings, environ={})
    dd.initialise()
    return dd


@dataclass(frozen=True)
class OwnIdentity:
    fingerprint: str
    password: str
    dd: DataDir

    @property
    def private_path(self) -> Path:
        return self.dd.identities / self.fingerprint

    @property
    def pub_path(self) -> Path:
        return self.dd.identities / f"{self.fingerprint}.pub"


def snapshot(root: Path, *parts: str) -> dict[str, Entry]:
    """``{path relative to root: (mode, mtime_ns, bytes or None)}`` for everything under
    ``root`` (or only under ``root/part`` for each of ``parts``), folders included."""
    out: dict[str, Entry] = {}
    for top in [root / p for p in parts] if parts else [root]:
        for dirpath, _, filenames in os.walk(top):
            here = Path(dirpath)
            st = here.stat()
            out[str(here.relative_to(root))] = (st.st_mode, st.st_mtime_ns, None)
            for name in filenames:
                path = here / name
                st = path.lstat()
                data = os.readlink(path).encode() if path.is_symlink() else path.read_bytes()
                out[str(path.relative_to(root))] = (st.st_mode, st.st_mtime_ns, data)
    return out
