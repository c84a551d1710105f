"""Key-server mode: anyone may upload a ``.pub`` document (``POST /identities``).

Off by default (setting ``key_server``). The 2019 SKS flooding showed what an
open key store must not allow: keys that grow without bound (anyone could
append signatures to someone else's key until it was unusable) and a store
that grows without bound. Here:

* a ``.pub`` document has a fixed form (four lines, one certificate by the key
  itself): nothing can be appended to it; at most ``key_server_max_body`` bytes;
* the first verified document for a fingerprint stays: an upload never
  replaces a stored key (no poisoning), a different one is a 409;
* each remote address (an IPv6 address counts as its /64) may try
  ``key_server_rate`` uploads per hour, good or bad; the count is in
  ``state/keyserver.sqlite3`` so it holds across workers and restarts;
* at most ``key_server_max_keys`` ``.pub`` files are stored (507 beyond).
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import sqlite3
import time
from collections.abc import Iterator

from ..base import names
from ..base.datadir import DataDir
from ..base.errors import BadInput, NotFound, RateLimited, StoreFull, TooLarge
from ..base.fsio import file_lock
from ..identity import keys
from ..identity.identities import Identities

DB_NAME = "keyserver.sqlite3"
HOUR = 3600
_SCHEMA = "CREATE TABLE IF NOT EXISTS uploads (addr TEXT NOT NULL, t INTEGER NOT NULL)"
_INDEX = "CREATE INDEX IF NOT EXISTS uploads_addr ON uploads (addr, t)"


def rate_key(remote: str) -> str:
    """The rate-limit bucket of a remote address: IPv4 as is (IPv4-mapped IPv6 too), IPv6
    by its /64, anything else as ``other:<first 64 characters>``. Never raises."""
    try:
        ip = ipaddress.ip_address(remote.split("%", 1)[0])
    except ValueError:
        return "other:" + remote[:64]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


@contextlib.contextmanager
def _db(dd: DataDir) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(dd.state / DB_NAME, timeout=30, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(_SCHEMA)
        conn.execute(_INDEX)
        yield conn
    finally:
        conn.close()


def count_attempt(dd: DataDir, remote: str, *, now: int | None = None) -> None:
    """Record an upload attempt from ``remote`` (an IP address) at ``now`` (unix seconds).

    Raises :class:`RateLimited` once its bucket (:func:`rate_key`) has made
    ``key_server_rate`` attempts in the last hour; refused attempts are not counted
    (``docs/protocol.md``, Key-server mode).
    """
    t = int(time.time()) if now is None else now
    bucket, rate = rate_key(remote), dd.settings["key_server_rate"]
    with _db(dd) as conn:
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute("DELETE FROM uploads WHERE t <= ?", (t - HOUR,))
            (seen,) = conn.execute("SELECT COUNT(*) FROM uploads WHERE addr = ?",
                                   (bucket,)).fetchone()
            if seen < rate:
                conn.execute("INSERT INTO uploads (addr, t) VALUES (?, ?)", (bucket, t))
        finally:
            conn.execute("COMMIT")
    if seen >= rate:
        raise RateLimited(f"at most {rate} key uploads per address per hour; try again later")


def stored_keys(dd: DataDir) -> int:
    """The number of ``.pub`` files in ``identities/`` (own identities' included)."""
    with os.scandir(dd.identities) as entries:
        return sum(1 for e in entries if e.name.endswith(".pub")
                   and names.FINGERPRINT_RE.fullmatch(e.name[:-4]))


def document_from_json(body: bytes) -> bytes:
    """The ``public_key`` string, as UTF-8 bytes, of a JSON body
    ``{"public_key": "<.pub document>"}``.

    Raises :class:`BadInput` (``field`` ``public_key``) if the body is not UTF-8 JSON or not
    an object with exactly that one string member.
    """
    try:
        doc = json.loads(body.decode("utf-8"))
    except (ValueError, RecursionError):
        raise BadInput("the body is not UTF-8 JSON", field="public_key") from None
    if not isinstance(doc, dict) or set(doc) != {"public_key"} or not isinstance(
            doc["public_key"], str):
        raise BadInput('send {"public_key": "<.pub document>"}', field="public_key")
    return doc["public_key"].encode("utf-8", "replace")


def accept_upload(dd: DataDir, body: bytes, remote: str, *, as_json: bool = False,
                  now: int | None = None) -> tuple[str, bool]:
    """Store an uploaded ``.pub`` document; return (fingerprint, newly stored).

    ``body`` is the document itself, or with ``as_json`` a JSON object
    ``{"public_key": ...}``. Checked in this order: key-server mode on (else
    :class:`NotFound`), the address's rate (every attempt counts), the body's
    size, the document's own certificate, then whether a
    key is already held for the fingerprint (then merged into the held one by
    the serial rule of :func:`keys.merge_pub`; a blocked identity: answered as if
    held, never stored), then the cap on stored keys (``docs/protocol.md``,
    Key-server mode).

    Raises :class:`NotFound` (mode off), :class:`RateLimited`, :class:`TooLarge` (over
    ``key_server_max_body`` bytes), :class:`BadInput` (a JSON body of the wrong shape),
    :class:`BadKeyDocument` (the document does not verify), :class:`KeyConflict` (a lower
    or conflicting serial for a held device) and :class:`StoreFull`
    (``key_server_max_keys`` reached).
    """
    s = dd.settings
    if not s["key_server"]:
        raise NotFound("this node is not a key server")
    count_attempt(dd, remote, now=now)
    if len(body) > s["key_server_max_body"]:
        raise TooLarge(f"a key upload is at most {s['key_server_max_body']} bytes",
                       field="public_key")
    key = keys.parse_pub(document_from_json(body) if as_json else body)
    ids, fp = Identities(dd), key.fingerprint
    with file_lock(dd.locks / "keyserver.lock"):
        if ids.is_blocked(fp):
            return fp, False
        if ids.exists(fp):  # merged by the serial rule; KeyConflict (409) for a downgrade
            ids.update_pub(fp, key.to_bytes())
            return fp, False
        if stored_keys(dd) >= s["key_server_max_keys"]:
            raise StoreFull()
        ids.import_pub(key.to_bytes(), expected_fp=fp)
    return fp, True
