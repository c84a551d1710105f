"""The public key directory of the peer port: own keys always, uploaded keys in key-server mode.

``GET /identities/<FP>`` (docs/protocol.md, *Key lookup*) serves exactly two
kinds of documents and answers one identical 404 for everything else, so the
answer reveals nothing about the node's contacts or its blocked list:

* the node's own identities (setting ``serve_own_keys``, on by default);
* in key-server mode (setting ``key_server``, off by default) the documents
  uploaded with ``POST /identities``. They are kept in
  ``state/keyserver.sqlite3``, apart from the node's own key store
  ``identities/``, so an upload neither reads nor changes what the node holds
  (no "already held" oracle) and an uploaded key is never used to verify posts.

The 2019 SKS flooding showed what an open key store must not allow: keys that
grow without bound (anyone could append signatures to someone else's key
until it was unusable) and a store that grows without bound. Here:

* a ``.pub`` document has a fixed form (four lines, one certificate by the key
  itself): nothing can be appended to it; at most ``key_server_max_body`` bytes;
* the first verified upload for a fingerprint stays: an upload never replaces
  an uploaded key (no poisoning), a different one is a 409;
* each remote address (an IPv6 address counts as its /64) may try
  ``key_server_rate`` uploads per hour, good or bad; the count is in
  ``state/keyserver.sqlite3`` so it holds across workers and restarts;
* at most ``key_server_max_keys`` uploaded keys are held (507 beyond).
"""

from __future__ import annotations

import contextlib
import ipaddress
import sqlite3
import time
from collections.abc import Iterator

from ..base import strictjson
from ..base.datadir import DataDir
from ..base.errors import BadInput, Conflict, NotFound, RateLimited, StoreFull, TooLarge
from ..identity import keys
from ..identity.identities import Identities

DB_NAME = "keyserver.sqlite3"
HOUR = 3600
_SCHEMA = "CREATE TABLE IF NOT EXISTS uploads (addr TEXT NOT NULL, t INTEGER NOT NULL)"
_INDEX = "CREATE INDEX IF NOT EXISTS uploads_addr ON uploads (addr, t)"
_KEYS = ("CREATE TABLE IF NOT EXISTS uploaded_keys (fp TEXT PRIMARY KEY, doc BLOB NOT NULL, "
         "t INTEGER NOT NULL)")


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
        conn.execute(_KEYS)
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
    """The number of uploaded keys held (what ``key_server_max_keys`` bounds); never raises a
    project error (``docs/protocol.md``, Key-server mode)."""
    with _db(dd) as conn:
        (count,) = conn.execute("SELECT COUNT(*) FROM uploaded_keys").fetchone()
    return int(count)


def uploaded_document(dd: DataDir, fp: str) -> bytes | None:
    """The uploaded ``.pub`` document of ``fp``, or None (also when not a key server).

    One indexed, read-only query whatever ``fp`` is; the node's own key store is not read.
    """
    if not dd.settings["key_server"]:
        return None
    uri = (dd.state / DB_NAME).resolve().as_uri() + "?mode=ro"
    try:
        conn = sqlite3.connect(uri, uri=True, timeout=30)
    except sqlite3.OperationalError:  # nothing uploaded yet: no database
        return None
    try:
        row = conn.execute("SELECT doc FROM uploaded_keys WHERE fp = ?", (fp,)).fetchone()
    except sqlite3.OperationalError:  # nothing uploaded yet: no table
        return None
    finally:
        conn.close()
    return bytes(row[0]) if row is not None else None


def served_document(dd: DataDir, fp: str) -> bytes | None:
    """What ``GET /identities/<fp>`` serves, or None for the one identical 404.

    ``fp`` has been checked against the fingerprint pattern. Served: an own
    identity's document (unless ``serve_own_keys`` is off), else, in key-server
    mode, an uploaded one. Nothing else, and the same work for every ``fp``
    that is neither (blocked, a contact's key or unknown): one ``stat`` of the
    private key file's name and, in key-server mode, one indexed query; no
    cache, nothing read from the contact list or the block list
    (docs/protocol.md, *Key lookup*; docs/threats.md, attack 4). Raises
    :class:`BadKeyDocument` only if an own identity's stored ``.pub`` is damaged.
    """
    ids = Identities(dd)
    own = ids.is_own(fp)
    uploaded = uploaded_document(dd, fp)
    if own and dd.settings["serve_own_keys"]:
        return ids.pub_document(fp)
    return uploaded


def document_from_json(body: bytes) -> bytes:
    """The ``public_key`` string, as UTF-8 bytes, of a JSON body
    ``{"public_key": "<.pub document>"}``.

    Raises :class:`BadInput` (``field`` ``public_key``) if the body is not UTF-8 JSON or not
    an object with exactly that one string member.
    """
    try:
        doc = strictjson.loads(body, what="the body", field="public_key")
    except BadInput as exc:
        raise BadInput(exc.message, field="public_key") from None
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
    size (:class:`TooLarge`), the document's own certificate
    (:class:`BadKeyDocument`), then whether a document was already *uploaded*
    for the fingerprint (the same one: not stored again; another one:
    :class:`Conflict`), then the cap on uploaded keys (:class:`StoreFull`).
    What the node itself holds in ``identities/`` (own, contacts, blocked) is
    neither read nor changed, so the answer says nothing about it
    (``docs/protocol.md``, Key-server mode).

    Raises :class:`NotFound` (mode off), :class:`RateLimited`, :class:`TooLarge` (over
    ``key_server_max_body`` bytes), :class:`BadInput` (a JSON body of the wrong shape),
    :class:`BadKeyDocument` (the document does not verify), :class:`Conflict` and
    :class:`StoreFull` (``key_server_max_keys`` reached).
    """
    s = dd.settings
    if not s["key_server"]:
        raise NotFound("this node is not a key server")
    count_attempt(dd, remote, now=now)
    if len(body) > s["key_server_max_body"]:
        raise TooLarge(f"a key upload is at most {s['key_server_max_body']} bytes",
                       field="public_key")
    key = keys.parse_pub(document_from_json(body) if as_json else body)
    doc, t = key.to_bytes(), int(time.time()) if now is None else now
    with _db(dd) as conn:
        conn.execute("BEGIN IMMEDIATE")
        try:
            row = conn.execute("SELECT doc FROM uploaded_keys WHERE fp = ?",
                               (key.fingerprint,)).fetchone()
            if row is not None:
                if bytes(row[0]) != doc:
                    raise Conflict("a different key document was uploaded for this "
                                   "fingerprint; it is never replaced", field="public_key")
                return key.fingerprint, False
            (count,) = conn.execute("SELECT COUNT(*) FROM uploaded_keys").fetchone()
            if count >= s["key_server_max_keys"]:
                raise StoreFull()
            conn.execute("INSERT INTO uploaded_keys (fp, doc, t) VALUES (?, ?, ?)",
                         (key.fingerprint, doc, t))
        finally:
            conn.execute("COMMIT")
    return key.fingerprint, True
