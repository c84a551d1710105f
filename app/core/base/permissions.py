"""Checking who may read the node's secrets, the way ssh checks ``~/.ssh``.

The secrets are ``admin.token`` and the private key files
``identities/<FP>`` (they hold the transport secret unencrypted); the
directories that hold them are the data directory and ``identities/``. Each
must belong to the user running the node and give nothing to group or others
(files ``0600``, directories ``0700``: what the node itself creates).

:func:`check` lists what is wrong; :func:`enforce` (every process start,
every CLI command, and before the admin token is read) acts on it:

- a secret *file* open to others is refused with
  :class:`~.errors.InsecureFile`, naming the file and the ``chmod`` that
  fixes it: the secret may already have been read, so the owner must know
  (and may want to replace it), as ssh refuses an open private key;
- a secret *directory* open to others (typically a data directory made with
  a plain ``mkdir``) is repaired to ``0700`` with a warning: that exposes only
  file names, and the repair is always safe;
- a secret owned by another user, or a symbolic link, is refused.

With ``secret_permissions = "warn"`` (file systems without Unix modes) every
finding is only logged. :func:`repair` (``diwan doctor --repair``) applies
every ``chmod``.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import InsecureFile
from .names import FINGERPRINT_RE

log = logging.getLogger("diwan.permissions")

TOKEN_FILE = "admin.token"


@dataclass(frozen=True)
class Finding:
    """One secret file or directory that is too open: ``path``, its ``mode``, the fix."""

    path: Path
    mode: int
    want: int
    problem: str

    @property
    def fix(self) -> str:
        """The command that fixes the mode, e.g. ``chmod 600 /data/admin.token``."""
        return f"chmod {self.want:o} {self.path}"

    def message(self) -> str:
        """One line for a person: the path, what is wrong and the fix."""
        return f"{self.path} {self.problem}; fix it with: {self.fix}"


def secrets(root: Path) -> Iterator[tuple[Path, int]]:
    """Every secret path under data directory ``root`` with the mode it should have."""
    yield root, 0o700
    identities = root / "identities"
    yield identities, 0o700
    yield root / TOKEN_FILE, 0o600
    try:
        names = sorted(os.listdir(identities))
    except FileNotFoundError:
        return
    for name in names:
        if FINGERPRINT_RE.fullmatch(name):
            yield identities / name, 0o600


def inspect(path: Path, want: int) -> Finding | None:
    """What is wrong with ``path`` (None if it is fine or absent)."""
    try:
        st = path.lstat()
    except FileNotFoundError:
        return None
    mode = stat.S_IMODE(st.st_mode)
    if stat.S_ISLNK(st.st_mode):
        return Finding(path, mode, want, "is a symbolic link (a secret must be a plain file)")
    if st.st_uid != os.geteuid():
        return Finding(path, mode, want, f"belongs to user {st.st_uid}, not to this user "
                       f"({os.geteuid()})")
    if mode & 0o077:
        who = " and ".join(w for w, bits in (("group", 0o070), ("others", 0o007))
                           if mode & bits)
        return Finding(path, mode, want, f"is open to {who} (mode {mode:o})")
    return None


def check(root: Path) -> list[Finding]:
    """Every secret under ``root`` that is too open, owned by someone else, or a link."""
    return [f for f in (inspect(p, want) for p, want in secrets(root)) if f is not None]


def enforce(root: Path, settings: Mapping[str, Any], paths: list[Path] | None = None) -> None:
    """Refuse (or with ``secret_permissions = "warn"`` log) open secrets.

    ``paths`` limits the check to these secrets (e.g. the token before it is
    read). Raises :class:`InsecureFile` for the first finding.
    """
    wanted = dict(secrets(root))
    found = check(root) if paths is None else [
        f for f in (inspect(p, wanted.get(p, 0o600)) for p in paths) if f is not None]
    for finding in found:
        if settings["secret_permissions"] == "warn":
            log.warning("secret_permissions = warn: %s", finding.message())
        elif _repairable(finding) and finding.path.is_dir():
            os.chmod(finding.path, finding.want)
            log.warning("%s was open to other users (mode %o); made it %o", finding.path,
                        finding.mode, finding.want)
        else:
            raise InsecureFile(finding.message() + " (or set secret_permissions = \"warn\")",
                               field="secret_permissions")


def repair(root: Path) -> list[Finding]:
    """chmod each open secret that belongs to this user; return what was repaired."""
    done = []
    for finding in check(root):
        if _repairable(finding):
            os.chmod(finding.path, finding.want)
            done.append(finding)
    return done


def _repairable(finding: Finding) -> bool:
    """Only a mode is wrong (not the owner, not a link)."""
    return finding.problem.startswith("is open to")
