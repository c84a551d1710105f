"""Identities unlocked for a browser session: type the password once, post many times.

Unlocking opens the identity's sealed seed with its password (Argon2id, the slow
part) and seals it again under a fresh random 32-byte *session key*
(XSalsa20-Poly1305): the sealed blob is written to
``state/web/unlocked/<session id>.<fingerprint>`` (0600), the key is handed back
to the caller and kept only in the browser's signed session cookie. The plain
seed is never on disk; every admin worker (and a restarted one) can open the
blob with the key the browser presents. The blob is removed on lock, on sign
out, and when it has not been used for ``web_unlock_idle`` seconds
(``docs/threats.md``, The web pages).
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

from ..base import crypto, names
from ..base.datadir import DataDir
from ..base.errors import WrongPassword
from ..base.fsio import write_atomic
from ..base.websessions import web_dir
from .identities import Identities

_SESSION_RE = re.compile(r"[0-9a-f]{16}")
KEY_BYTES = 32


def _blob(dd: DataDir, session_id: str, fp: str) -> Path:
    if not _SESSION_RE.fullmatch(session_id):
        raise ValueError("not a session id")
    names.fingerprint(fp)
    return web_dir(dd, "unlocked") / f"{session_id}.{fp}"


def unlock(dd: DataDir, session_id: str, fp: str, password: str) -> bytes:
    """Unlock the own identity ``fp`` for ``session_id``; returns the 32-byte session key.

    Raises what :meth:`Identities.open_seed` raises (:class:`WrongPassword`,
    :class:`NotFound`, :class:`Forbidden`, ...); nothing is written then.
    """
    seed = Identities(dd).open_seed(fp, password)
    key = crypto.random_bytes(KEY_BYTES)
    write_atomic(_blob(dd, session_id, fp), crypto.secret_seal(key, seed), mode=0o600)
    return key


def unlocked_seed(dd: DataDir, session_id: str, fp: str, key: bytes,
                  *, now: float | None = None) -> bytes | None:
    """The seed of ``fp`` unlocked in ``session_id``, or None if it is not unlocked (never
    was, locked, idle for longer than ``web_unlock_idle`` seconds: the blob is removed then,
    or ``key`` does not open it). Each use restarts the idle clock."""
    path = _blob(dd, session_id, fp)
    when = time.time() if now is None else now
    try:
        if path.stat().st_mtime + dd.settings["web_unlock_idle"] <= when:
            path.unlink(missing_ok=True)
            return None
        seed = crypto.secret_open(key, path.read_bytes())
    except (FileNotFoundError, WrongPassword):
        return None
    os.utime(path, (when, when))
    return seed


def unlocked(dd: DataDir, session_id: str, *, now: float | None = None) -> list[str]:
    """The fingerprints with a live unlocked blob in ``session_id`` (the key is not checked)."""
    if not _SESSION_RE.fullmatch(session_id):
        return []
    limit = (time.time() if now is None else now) - dd.settings["web_unlock_idle"]
    out = []
    for path in web_dir(dd, "unlocked").glob(f"{session_id}.*"):
        fp = path.name.partition(".")[2]
        if names.FINGERPRINT_RE.fullmatch(fp) and path.stat().st_mtime > limit:
            out.append(fp)
    return sorted(out)


def lock(dd: DataDir, session_id: str, fp: str) -> None:
    """Lock ``fp`` in ``session_id`` again: its sealed blob is removed."""
    _blob(dd, session_id, fp).unlink(missing_ok=True)
