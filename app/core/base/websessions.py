"""Browser sign-in for the node's own pages: one-time login codes and sessions.

Both live in ``state/web/`` (0700), one small file each, written atomically and
0600 from creation. A *login code* (``diwan open``) is ``<id>.<secret>``: the
file ``state/web/codes/<id>`` holds the SHA-256 of the secret and the expiry;
redeeming it removes the file first (so it works once, even if two requests race)
and then compares the hashes with ``hmac.compare_digest``. A *session* has the
same shape under ``state/web/sessions/<id>`` and ends when it expires or is
ended (sign out); its record names the port the browser signed in on, and it is
accepted on that port only. Secrets are never written to disk, only their hashes
(``docs/threats.md``, The web pages, T55).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from .datadir import DataDir
from .fsio import make_private_dir, write_atomic

_ID_RE = re.compile(r"[0-9a-f]{16}")
_SECRET_RE = re.compile(r"[A-Za-z0-9_-]{43}")


@dataclass(frozen=True)
class Session:
    """A signed-in browser: ``id`` (16 hex digits, names the server-side files) and the
    second of its expiry."""

    id: str
    expires: int


def web_dir(dd: DataDir, kind: str) -> Path:
    """``state/web/<kind>`` (created 0700 if missing)."""
    top = dd.state / "web"
    make_private_dir(top)
    path = top / kind
    make_private_dir(path)
    return path


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


def _issue(folder: Path, ttl: int, now: float | None,
           port: int | None = None) -> tuple[str, int]:
    ident, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
    expires = int((time.time() if now is None else now) + ttl)
    record: dict[str, object] = {"sha256": _digest(secret), "expires": expires}
    if port is not None:
        record["port"] = port
    write_atomic(folder / ident, json.dumps(record).encode(), mode=0o600, exclusive=True)
    return f"{ident}.{secret}", expires


def _split(token: object) -> tuple[str, str] | None:
    if not isinstance(token, str):
        return None
    ident, _, secret = token.partition(".")
    if not _ID_RE.fullmatch(ident) or not _SECRET_RE.fullmatch(secret):
        return None
    return ident, secret


def _matches(path: Path, secret: str, now: float | None, port: int | None = None) -> int | None:
    """The expiry recorded in ``path`` if ``secret`` matches it, it has not expired and, if
    the record names a port, ``port`` is that port."""
    try:
        record = json.loads(path.read_bytes())
        expected, expires = str(record["sha256"]), int(record["expires"])
        bound = record.get("port")
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    if expires <= (time.time() if now is None else now):
        return None
    if bound is not None and bound != port:
        return None
    if not hmac.compare_digest(expected.encode(), _digest(secret).encode()):
        return None
    return expires


def issue_login_code(dd: DataDir, *, now: float | None = None) -> str:
    """A new one-time login code ``<id>.<secret>``, valid for the ``web_login_code_ttl``
    setting's seconds and once only."""
    prune(dd, now=now)
    code, _ = _issue(web_dir(dd, "codes"), dd.settings["web_login_code_ttl"], now)
    return code


def redeem_login_code(dd: DataDir, code: object, *, now: float | None = None) -> bool:
    """True once for a valid, unexpired code made by :func:`issue_login_code`; the code is
    gone afterwards, whether it matched or not. Anything else (malformed, unknown, used,
    expired) is False."""
    parts = _split(code)
    if parts is None:
        return False
    path = web_dir(dd, "codes") / parts[0]
    claimed = path.with_name(f".claimed-{parts[0]}-{secrets.token_hex(4)}")
    try:
        os.rename(path, claimed)  # only one request can take the file
    except FileNotFoundError:
        return False
    try:
        return _matches(claimed, parts[1], now) is not None
    finally:
        claimed.unlink(missing_ok=True)


def start_session(dd: DataDir, *, port: int | None = None,
                  now: float | None = None) -> tuple[str, Session]:
    """A new session: ``(token for the cookie, Session)``; it lasts ``web_session_ttl``
    seconds unless ended first. With ``port`` (the port in the ``Host`` the browser used)
    the record is bound to it: :func:`check_session` accepts it on that port only."""
    prune(dd, now=now)
    token, expires = _issue(web_dir(dd, "sessions"), dd.settings["web_session_ttl"], now,
                            port)
    return token, Session(token.partition(".")[0], expires)


def check_session(dd: DataDir, token: object, *, port: int | None = None,
                  now: float | None = None) -> Session | None:
    """The live session ``token`` names, or None (malformed, unknown, ended, expired, or
    bound to a port other than ``port``)."""
    parts = _split(token)
    if parts is None:
        return None
    expires = _matches(web_dir(dd, "sessions") / parts[0], parts[1], now, port)
    return Session(parts[0], expires) if expires is not None else None


def end_session(dd: DataDir, session_id: str) -> None:
    """End a session: its file and every key it unlocked are removed."""
    if not _ID_RE.fullmatch(session_id):
        return
    (web_dir(dd, "sessions") / session_id).unlink(missing_ok=True)
    for path in web_dir(dd, "unlocked").glob(f"{session_id}.*"):
        path.unlink(missing_ok=True)


def prune(dd: DataDir, *, now: float | None = None) -> None:
    """Remove expired codes and sessions (and the unlocked keys of expired sessions)."""
    limit = time.time() if now is None else now
    for kind in ("codes", "sessions"):
        for path in web_dir(dd, kind).iterdir():
            with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
                if not _ID_RE.fullmatch(path.name):
                    continue
                if int(json.loads(path.read_bytes())["expires"]) <= limit:
                    if kind == "sessions":
                        end_session(dd, path.name)
                    path.unlink(missing_ok=True)


def cookie_secret(dd: DataDir) -> bytes:
    """The 32-byte key that signs the pages' session cookies and CSRF tokens, shared by
    every admin worker: ``state/web/cookie.key`` (0600), made on first use."""
    path = web_dir(dd, "keys") / "cookie.key"
    write_atomic(path, secrets.token_bytes(32), mode=0o600, exclusive=True)
    return path.read_bytes()
