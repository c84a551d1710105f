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

* a ``.pub`` document has a fixed form (the key and 1 to 8 device certificates,
  each by the key itself): nothing can be appended to it by anyone else; at most
  ``key_server_max_body`` bytes;
* an uploaded document is only merged into by the serial rule (a certificate the
  key signed with a higher serial replaces its device's; anything else is a 409):
  no upload swaps or poisons an uploaded key;
* each remote address (an IPv6 address counts as its /64) may try
  ``key_server_rate`` uploads per hour, good or bad, and each wider prefix
  (an IPv6 /48, an IPv4 /24) ``key_server_prefix_rate``; the counts are in
  ``state/keyserver.sqlite3`` so they hold across workers and restarts;
* the keys uploaded from one address (/64) and from one prefix (/48, /24) are
  held to ``key_server_keys_per_address`` and ``key_server_keys_per_prefix``
  (429 beyond), each at most a tenth of the cap: no one prefix can fill it
  (one IPv6 /48 holds 65,536 /64s);
* an uploaded key that nobody fetched within ``key_server_unfetched_days``
  days is deleted (a full store expires such keys first);
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
from ..base.errors import BadInput, NotFound, RateLimited, StoreFull, TooLarge
from ..identity import keys
from ..identity.identities import Identities

DB_NAME = "keyserver.sqlite3"
HOUR = 3600
DAY = 86400
_SCHEMA = "CREATE TABLE IF NOT EXISTS uploads (addr TEXT NOT NULL, t INTEGER NOT NULL)"
_INDEX = "CREATE INDEX IF NOT EXISTS uploads_addr ON uploads (addr, t)"
_KEYS = ("CREATE TABLE IF NOT EXISTS uploaded_keys (fp TEXT PRIMARY KEY, doc BLOB NOT NULL, "
         "t INTEGER NOT NULL)")


# who uploaded each key (address and prefix bucket) and when it was first fetched
_KEY_COLUMNS = (("addr", "TEXT NOT NULL DEFAULT ''"), ("prefix", "TEXT NOT NULL DEFAULT ''"),
                ("fetched", "INTEGER"))


def buckets(remote: str) -> tuple[str, str]:
    """``(address, prefix)`` buckets of a remote address; never raises.

    IPv4 (IPv4-mapped IPv6 too): the address and its /24; IPv6: its /64 and its
    /48; anything else: ``other:<first 64 characters>`` and ``other``.
    """
    try:
        ip = ipaddress.ip_address(remote.split("%", 1)[0])
    except ValueError:
        return "other:" + remote[:64], "other"
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if isinstance(ip, ipaddress.IPv6Address):
        return (str(ipaddress.IPv6Network((ip, 64), strict=False)),
                str(ipaddress.IPv6Network((ip, 48), strict=False)))
    return str(ip), str(ipaddress.IPv4Network((ip, 24), strict=False))


def rate_key(remote: str) -> str:
    """The narrow rate-limit bucket of a remote address: IPv4 as is (IPv4-mapped IPv6 too),
    IPv6 by its /64, anything else as ``other:<first 64 characters>``. Never raises."""
    return buckets(remote)[0]


@contextlib.contextmanager
def _db(dd: DataDir) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(dd.state / DB_NAME, timeout=30, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(_SCHEMA)
        conn.execute(_INDEX)
        conn.execute(_KEYS)
        have = {row[1] for row in conn.execute("PRAGMA table_info(uploaded_keys)")}
        for name, decl in _KEY_COLUMNS:
            if name not in have:
                conn.execute(f"ALTER TABLE uploaded_keys ADD COLUMN {name} {decl}")
        yield conn
    finally:
        conn.close()


def count_attempt(dd: DataDir, remote: str, *, now: int | None = None) -> None:
    """Record an upload attempt from ``remote`` (an IP address) at ``now`` (unix seconds).

    Raises :class:`RateLimited` once its address bucket (:func:`buckets`: IPv6 /64)
    has made ``key_server_rate`` attempts in the last hour, or its prefix (IPv6
    /48, IPv4 /24) ``key_server_prefix_rate``; refused attempts are not counted
    (``docs/protocol.md``, Key-server mode).
    """
    t = int(time.time()) if now is None else now
    limits = tuple(zip(buckets(remote), (dd.settings["key_server_rate"],
                                         dd.settings["key_server_prefix_rate"]), strict=True))
    refused = None
    with _db(dd) as conn:
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute("DELETE FROM uploads WHERE t <= ?", (t - HOUR,))
            for (bucket, rate), what in zip(limits, ("address", "network prefix"), strict=True):
                (seen,) = conn.execute("SELECT COUNT(*) FROM uploads WHERE addr = ?",
                                       (bucket,)).fetchone()
                if seen >= rate:
                    refused = f"at most {rate} key uploads per {what} per hour; try again later"
                    break
            else:
                conn.executemany("INSERT INTO uploads (addr, t) VALUES (?, ?)",
                                 [(bucket, t) for bucket, _ in limits])
        finally:
            conn.execute("COMMIT")
    if refused:
        raise RateLimited(refused)


def _check_quota(conn: sqlite3.Connection, dd: DataDir, remote: str) -> tuple[str, str]:
    """``remote``'s (address, prefix) buckets; :class:`RateLimited` if either holds its share.

    A share is its setting, but never more than a tenth of ``key_server_max_keys``.
    """
    addr, prefix = buckets(remote)
    most = max(1, dd.settings["key_server_max_keys"] // 10)
    for column, bucket, setting, what in (
            ("addr", addr, "key_server_keys_per_address", "address"),
            ("prefix", prefix, "key_server_keys_per_prefix", "network prefix")):
        (held,) = conn.execute(f"SELECT COUNT(*) FROM uploaded_keys WHERE {column} = ?",
                               (bucket,)).fetchone()
        share = min(dd.settings[setting], most)
        if held >= share:
            raise RateLimited(f"this key server holds as many keys from one {what} as it "
                              f"will ({share})")
    return addr, prefix


def note_fetched(dd: DataDir, fp: str, *, now: int | None = None) -> None:
    """Record the first fetch of uploaded key ``fp`` (an uploaded key never fetched expires)."""
    t = int(time.time()) if now is None else now
    with _db(dd) as conn:
        conn.execute("UPDATE uploaded_keys SET fetched = ? WHERE fp = ? AND fetched IS NULL",
                     (t, fp))


def expire_unfetched(dd: DataDir, *, now: int | None = None) -> int:
    """Delete the uploaded keys nobody fetched within ``key_server_unfetched_days`` days of
    their upload; return how many. Never touches the node's own key store."""
    t = int(time.time()) if now is None else now
    cutoff = t - dd.settings["key_server_unfetched_days"] * DAY
    with _db(dd) as conn:
        return _expire(conn, cutoff)


def _expire(conn: sqlite3.Connection, cutoff: int) -> int:
    cur = conn.execute("DELETE FROM uploaded_keys WHERE fetched IS NULL AND t <= ?", (cutoff,))
    return int(cur.rowcount)


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
    if uploaded is not None:
        note_fetched(dd, fp)  # a fetched upload never expires
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
    for the fingerprint (then the upload is merged into it by the serial rule
    of :func:`keys.merge_pub`: a higher serial for a device replaces it, a new
    device is added, the same document changes nothing, a lower or conflicting
    serial is :class:`KeyConflict`), then the address's and prefix's shares
    (:class:`RateLimited`), then the cap on uploaded keys (:class:`StoreFull`,
    after expiring keys never fetched). What the node itself holds in
    ``identities/`` (own, contacts, blocked) is neither read nor changed, so the
    answer says nothing about it (``docs/protocol.md``, Key-server mode).

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
    doc, t = key.to_bytes(), int(time.time()) if now is None else now
    with _db(dd) as conn:
        conn.execute("BEGIN IMMEDIATE")
        try:
            row = conn.execute("SELECT doc FROM uploaded_keys WHERE fp = ?",
                               (key.fingerprint,)).fetchone()
            if row is not None:
                held = keys.parse_pub(bytes(row[0]), expected_fp=key.fingerprint)
                merged = keys.merge_pub(held, key)   # KeyConflict for a downgrade
                if merged is not held:
                    conn.execute("UPDATE uploaded_keys SET doc = ?, t = ? WHERE fp = ?",
                                 (merged.to_bytes(), t, key.fingerprint))
                return key.fingerprint, False
            addr, prefix = _check_quota(conn, dd, remote)
            (count,) = conn.execute("SELECT COUNT(*) FROM uploaded_keys").fetchone()
            if count >= s["key_server_max_keys"]:
                count -= _expire(conn, t - s["key_server_unfetched_days"] * DAY)
            if count >= s["key_server_max_keys"]:
                raise StoreFull()
            conn.execute("INSERT INTO uploaded_keys (fp, doc, t, addr, prefix) "
                         "VALUES (?, ?, ?, ?, ?)", (key.fingerprint, doc, t, addr, prefix))
        finally:
            conn.execute("COMMIT")
    return key.fingerprint, True
