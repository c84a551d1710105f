"""Serving a feed request on this node, and the owner's "share comments with" setting.

:func:`serve_feed` is everything ``POST /feeds/<fp>`` does (docs/protocol.md,
"Serving a request"), in this order: the network prefix's request budget
(checked before any decryption, spent only by a request that gets no page);
message 1 opened with the one owner key slot its key
id names, decoys for a fingerprint not hosted here or a key id that names no
slot (:mod:`ownkeys`), so that every request that
does not authenticate gets the one :class:`NotAuthenticated` answer after the
same work; the asker authenticated, against the ``.pub`` this node stores for
it when there is one (pinned; a newer certificate updates it), else as a
stranger who gets public posts only and leaves nothing stored; the request's
fields, time window and nonce (:mod:`nonces`); the page chosen by the index;
the asker's request and byte budget; then the response, padded to its size
bucket and streamed (at most ``max_response_bytes``, one post file in memory
at a time). A blocked asker gets an ordinary empty page. No cache keyed by
anything in the request is read before the asker is authenticated. Once the
nonce is recorded, an invite token in the request is redeemed, another node
of the owner's identity is remembered at its ``reply`` address and served the
whole feed, and a contact's first request confirms an invite's follow-back.

The per-identity setting lives in ``state/identity_settings.json``::

    {"<own FP>": {"share_comments_group": "<group name>"}}

When set, comments addressed to others are also served to members of that
group ("Ahmed can choose to broadcast comments to Camal").
"""

from __future__ import annotations

import hmac
import itertools
import logging
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..base import names, noise
from ..base.datadir import DataDir
from ..base.errors import BadInput, DiwanError, NotAuthenticated, NotFound
from ..base.statefile import StateFile, read_cached
from ..identity import keys
from ..identity.identities import Identities
from ..posts import feedorder
from ..posts.codec import decode_post, inner_authors
from ..posts.index import Index
from ..posts.ingest import post_path
from ..posts.reconcile import open_index
from . import exchange, invitestate, ownkeys, pages
from .addresses import peer_urls
from .budgets import Budgets, asker_charge, prefix_charges, prefixes
from .contacts import Contacts
from .nonces import NonceStore
from .ownnodes import OwnNodes
from .reach import own_reach
from .servedfiles import page_records, size_of

log = logging.getLogger("diwan.feeds")

SETTINGS_NAME = "identity_settings"
SHARE_COMMENTS = "share_comments_group"
STRANGER = "0" * 64  # the viewer a stranger is served as: no post is addressed to it
KEY_SCAN = 1000      # newest reshares searched for the authors whose keys an asker wants

_INDEX_CACHE = 16
_indexes: dict[int, tuple[DataDir, Index]] = {}  # id(dd) -> (dd kept alive, its index)
_indexes_lock = threading.Lock()


def _index(dd: DataDir) -> Index:
    """One long-lived :class:`Index` per data directory object (its connections are reused)."""
    with _indexes_lock:
        found = _indexes.get(id(dd))
        if found is None:
            if len(_indexes) >= _INDEX_CACHE:
                _indexes.pop(next(iter(_indexes)))
            found = _indexes[id(dd)] = (dd, open_index(dd))
        return found[1]


@dataclass(frozen=True)
class Asker:
    """An authenticated asker: its fingerprint, and whether it was checked against a pin."""

    fp: str
    pinned: bool
    budget_key: str
    newer: bool = False  # it sent a newer certificate than the one held


@dataclass
class FeedAnswer:
    """The response: its exact length in bytes and its pieces (a generator: stream them)."""

    size: int
    pieces: Iterator[bytes]

    def read(self) -> bytes:
        """The whole body at once (tests, small pages)."""
        return b"".join(self.pieces)


def serve_feed(dd: DataDir, owner_fp: str, body: bytes, *, remote: str = "",
               now: int | None = None) -> FeedAnswer:
    """Answer a feed request for ``owner_fp`` from the address ``remote``.

    Raises :class:`RateLimited` past a budget, :class:`NotAuthenticated` (the one
    answer) for any request that does not authenticate, whether ``owner_fp`` is
    hosted here or not, and other 4xx errors for an authenticated asker's bad,
    stale or replayed request. Nothing is written for a request that does not
    authenticate but the prefix's budget count; a served request spends its
    asker's budget, not the prefix's (review finding S2).
    """
    s = dd.settings
    t = int(time.time()) if now is None else now
    budgets = Budgets(dd)
    with budgets.unless_served(prefix_charges(s, remote), now=t):
        return _serve(dd, budgets, owner_fp, body, remote, t)


def _serve(dd: DataDir, budgets: Budgets, owner_fp: str, body: bytes, remote: str, t: int
           ) -> FeedAnswer:
    """:func:`serve_feed` past the prefix budget's check."""
    s = dd.settings
    served = ownkeys.served(dd, owner_fp)
    opened = exchange.open_request(body, owner_fp=owner_fp, slots=served.slots)
    if served.pub is None:  # a decoy opened it: cannot happen without the decoy's secret
        raise NotAuthenticated()
    ids = Identities(dd)
    asker = authenticate(ids, opened, remote)
    req = exchange.parse_request(opened, now=t, window=s["request_window"],
                                 max_limit=s["max_page_size"],
                                 max_summary=s["max_summary_entries"])
    # the nonce before any page is chosen: a replay costs no selection (protocol.md step 10)
    NonceStore(dd).use(req.nonce, req.time, now=t, window=s["request_window"])
    blocked = ids.is_blocked(asker.fp)
    head = noise.MESSAGE2_OVERHEAD + len(served.pub)
    told = exchange.address_part(told_addresses(dd, req, asker, blocked, t))
    key_part = b"" if blocked or not req.keys else b"".join(
        map(pages.key_record, keys_for(dd, ids, req, asker)))
    paths: list[tuple[int, str]] = []
    sizes: list[int] = []
    summary = b""
    more = False
    if blocked:  # nothing for a blocked asker
        epoch = feedorder.epoch(_index(dd))
    elif req.summary:
        room = (s["max_response_bytes"] - pages.body_bytes(
            head, len(told) + pages.EPOCH_BYTES + len(key_part) + pages.HEAD + pages.END_BYTES))
        epoch, entries, more = _summary(dd, ids, req, asker, max(1, room // pages.ENTRY_BYTES))
        summary = pages.summary_record(entries)
    else:
        epoch, paths, sizes, more = _select(dd, ids, req, asker)
    if req.epoch not in (None, epoch) and req.after > 0:  # a position of another epoch:
        paths, sizes, summary, more = [], [], b"", False  # nothing; compare summaries
    fixed = told + pages.epoch_record(epoch) + key_part + summary
    count, cut = pages.fit_page(sizes, head, s["max_response_bytes"], len(fixed))
    writer = pages.PageWriter(opened.handshake, served.pub, sizes[:count],
                              s["max_response_bytes"], len(fixed))
    if not blocked:
        _introductions(dd, opened, asker, req, t)
    budgets.spend([asker_charge(s, asker.budget_key, writer.size)], now=t)
    if asker.newer:
        _update_pin(ids, asker.fp, opened.pub_document)
    if req.reach and asker.pinned and not blocked:  # a contact's node says where it is
        Contacts(dd).learn(asker.fp, list(req.reach), s["max_learned_addresses"])
    records = itertools.chain([fixed], page_records(paths[:count], sizes,
                                                    cache_bytes=s["feed_cache_kib"] * 1024))
    return FeedAnswer(writer.size, writer.pieces(records, more or cut))


def told_addresses(dd: DataDir, req: exchange.FeedRequest, asker: Asker, blocked: bool,
                   now: float) -> list[str] | None:
    """What the response tells of the nodes serving the owner's identity: None when the
    asker did not ask (no ``reach``: an older node), [] for a stranger or a blocked
    asker, else this node's addresses (:func:`.reach.own_reach`)."""
    if req.reach is None:
        return None
    if blocked or not asker.pinned:
        return []
    return own_reach(dd, now)


def _introductions(dd: DataDir, opened: exchange.OpenedRequest, asker: Asker,
                   req: exchange.FeedRequest, now: int) -> None:
    """What an authenticated, unblocked, not replayed request tells this node besides the
    page it asks for (docs/protocol.md, Invites): an invite token (follow the asker
    back), the address of another node of the same identity, and, from a contact
    this node redeemed an invite of, that it follows back."""
    if req.invite is not None and asker.fp != req.owner_fp:
        invitestate.redeem(dd, req.owner_fp, asker.fp, opened.pub_document, req.invite,
                           req.reply, now=now)
    if asker.pinned and asker.fp == req.owner_fp and req.reply is not None:
        OwnNodes(dd).add(asker.fp, [req.reply], mine=peer_urls(dd.settings))
    elif asker.pinned:
        invitestate.confirm(dd, asker.fp, now=now)


def keys_for(dd: DataDir, ids: Identities, req: exchange.FeedRequest, asker: Asker
             ) -> list[bytes]:
    """The ``.pub`` documents of the asked-for authors whose posts this asker has received
    from this feed: the inner authors of the owner's reshares it may see (public ones
    for a stranger), among the newest :data:`KEY_SCAN`; for another node of the
    owner's identity, any key asked for. Keys this node does not hold, or of blocked
    identities, are left out."""
    wanted, found = set(req.keys), set()
    if asker.pinned and asker.fp == req.owner_fp:  # another node of this identity: any held
        found = wanted
    viewer = asker.fp if asker.pinned else STRANGER
    folder = post_path(dd, req.owner_fp, "0" * 40).parent
    for sha in [] if found == wanted else _index(dd).feed_reshares(req.owner_fp, viewer,
                                                                     KEY_SCAN):
        found |= _reshared_authors(folder, sha, dd.settings["max_post_bytes"]) & wanted
        if found == wanted:
            break
    docs = []
    for fp in sorted(found):
        if ids.is_blocked(fp):
            continue
        try:
            docs.append(ids.pub_document(fp))
        except NotFound:
            continue
    return docs


_INNER_MAX = 8192  # reshares whose inner authors a process remembers (~2 MiB)
_inner: dict[str, frozenset[str]] = {}


def _reshared_authors(folder: Path, sha: str, max_bytes: int) -> frozenset[str]:
    """The inner authors of the reshare ``sha`` (a file of ``folder``), read once per
    process: a post's content never changes under its SHA-1, so a request for keys
    costs index rows, not up to :data:`KEY_SCAN` file reads and decodes each time (a
    stranger asking for absent keys made the node read them all at every request)."""
    got = _inner.get(sha)
    if got is None:
        try:
            got = frozenset(inner_authors(decode_post((folder / names.sha1(sha)).read_bytes(),
                                                      max_bytes=max_bytes), max_bytes))
        except (OSError, DiwanError):
            return frozenset()
        if len(_inner) >= _INNER_MAX:
            _inner.clear()
        _inner[sha] = got
    return got


def authenticate(ids: Identities, opened: exchange.OpenedRequest, remote: str) -> Asker:
    """Who asks: the Noise-authenticated key must be certified by the asker's ``.pub``.

    If this node holds a ``.pub`` for that fingerprint (a contact, an addressee,
    any key it stores), the received one is merged into it (``keys.merge_pub``:
    a new device or a higher serial only; a lower serial, a copy stale about another
    device, keeps the held one) and the key must be certified by the result;
    otherwise the asker is a stranger, checked against the received document alone.
    A received document equal to the held one (the usual case) or a stranger's is
    verified once (then remembered for the static key it authenticated,
    :func:`_parse_sent`); one that differs is merged with the held one, verified too.
    :class:`NotAuthenticated` for anything else.
    """
    try:
        claimed = _parse_sent(opened)
        fp = claimed.fingerprint
        try:
            held_bytes, pinned = ids.pub_bytes(fp), True
        except FileNotFoundError:
            held_bytes, pinned = opened.pub_document, False
        merged = held = claimed
        if not hmac.compare_digest(held_bytes, opened.pub_document):
            held = keys.parse_pub(held_bytes, expected_fp=fp)
            merged = keys.merge_pub(held, claimed, keep_newer=True)  # stale: kept
    except DiwanError:
        raise NotAuthenticated() from None
    if opened.asker_static not in merged.transports:
        raise NotAuthenticated()
    _remember_sent(opened, claimed)
    key = "asker:" + fp if pinned else "stranger:" + prefixes(remote)[0]
    return Asker(fp, pinned, key, newer=pinned and merged is not held)


_VERIFIED_MAX = 512
_verified: dict[tuple[bytes, bytes], keys.PublicKey] = {}


def _parse_sent(opened: exchange.OpenedRequest) -> keys.PublicKey:
    """The asker's ``.pub`` parsed and verified, or taken from :data:`_verified`.

    The cache is keyed by the pair (Noise-authenticated static key, document
    received under it) and holds only pairs that authenticated before: a hit
    needs the static key's secret and a document already verified for it, so
    only an asker that authenticated before can ever hit its own entry
    (docs/threats.md, A4). Parsing is a pure function of the bytes.
    """
    found = _verified.get((opened.asker_static, opened.pub_document))
    return found if found is not None else keys.parse_pub(opened.pub_document)


def _remember_sent(opened: exchange.OpenedRequest, claimed: keys.PublicKey) -> None:
    """Keep a verified document whose certificates include the asker's static key."""
    if opened.asker_static not in claimed.transports:
        return  # authenticated through a merge with the held document: not cached
    if len(_verified) >= _VERIFIED_MAX:
        _verified.clear()
    _verified[(opened.asker_static, opened.pub_document)] = claimed


def _update_pin(ids: Identities, fp: str, document: bytes) -> None:
    """Store a newer certificate the asker sent (a rotated device key)."""
    try:
        if ids.update_pub(fp, document, keep_newer=True):
            log.info("%s: stored its newer key certificate", fp)
    except DiwanError as exc:  # checked in authenticate(); a race with another update
        log.info("%s: newer key certificate not stored: %s", fp, exc.message)


def _select(dd: DataDir, ids: Identities, req: exchange.FeedRequest, asker: Asker
            ) -> tuple[int, list[tuple[int, str]], list[int], bool]:
    """The index's epoch, then the (position, file) pairs and sizes of the page ``asker``
    may see (public only for a stranger; everything for another node of the owner's own
    identity), after ``req.after`` in the owner's order (each file ``stat``-ed once, by
    the index), and ``more``. The epoch comes from the page's own statement."""
    viewers = comment_viewers(dd, ids, req.owner_fp) if asker.pinned else frozenset()
    index = _index(dd)
    epoch, found, more = feedorder.epoch_and_files(
        index, req.owner_fp, asker.fp if asker.pinned else STRANGER, after=req.after,
        limit=req.limit, comment_viewers=viewers, known_size=size_of)
    folder = f"{index.posts_prefix}{req.owner_fp}{os.sep}"  # names checked by the index
    return (epoch, [(position, folder + sha) for position, sha, _ in found],
            [size for _, _, size in found], more)


def _summary(dd: DataDir, ids: Identities, req: exchange.FeedRequest, asker: Asker,
             room: int) -> tuple[int, list[tuple[int, bytes]], bool]:
    """The index's epoch and the summary entries ``asker`` may see after ``req.after``: at
    most ``req.limit`` (already lowered to ``max_summary_entries``) and ``room``."""
    viewers = comment_viewers(dd, ids, req.owner_fp) if asker.pinned else frozenset()
    return feedorder.epoch_and_summary(
        _index(dd), req.owner_fp, asker.fp if asker.pinned else STRANGER, after=req.after,
        limit=min(req.limit, room), comment_viewers=viewers)


def comment_viewers(dd: DataDir, ids: Identities, owner_fp: str) -> frozenset[str]:
    """Members of the owner's comment-sharing group (empty if none is set or it is gone)."""
    group = get_share_comments_group(dd, owner_fp)
    if group is None:
        return frozenset()
    try:
        return frozenset(ids.members(group))
    except NotFound:
        return frozenset()


def _identity_settings(dd: DataDir) -> dict[str, Any]:
    """``state/identity_settings.json``, parsed again only when the file changes."""
    return read_cached(dd, SETTINGS_NAME)


def get_share_comments_group(dd: DataDir, fp: str) -> str | None:
    """The group an own identity shares its comments with, or None (the default)."""
    entry = _identity_settings(dd).get(names.fingerprint(fp))
    value = entry.get(SHARE_COMMENTS) if isinstance(entry, dict) else None
    return value if isinstance(value, str) and names.GROUP_RE.fullmatch(value) else None


def set_share_comments_group(dd: DataDir, fp: str, group: str | None) -> None:
    """Share ``fp``'s comments with the members of ``group`` (None: with nobody else).

    ``fp`` must be an own identity (:class:`NotFound` otherwise) and ``group``
    an existing group other than ``blocked``.
    """
    ids = Identities(dd)
    if not ids.is_own(names.fingerprint(fp)):
        raise NotFound(f"{fp} is not one of this node's own identities", field="fingerprint")
    if group is not None:
        if names.group(group, field="group") == names.BLOCKED:
            raise BadInput("comments cannot be shared with the blocked group", field="group")
        ids.group_dir(group)  # NotFound if there is no such group
    with StateFile(dd, SETTINGS_NAME).update() as data:
        found = data.get(fp)
        entry: dict[str, Any] = found if isinstance(found, dict) else {}
        if group is None:
            entry.pop(SHARE_COMMENTS, None)
        else:
            entry[SHARE_COMMENTS] = group
        if entry:
            data[fp] = entry
        else:
            data.pop(fp, None)
