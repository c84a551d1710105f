"""Serving a feed request on this node, and the owner's "share comments with" setting.

:func:`serve_feed` is everything ``POST /feeds/<fp>`` does: only an own
identity's feed is served (no redistribution of other people's content); the
request is opened and authenticated (:mod:`exchange`), its nonce recorded
(:mod:`nonces`), the posts the asker may see selected by the index, and the
answer sealed to the request's ephemeral key. A blocked asker gets a normal
empty page, the same bytes in shape and size as an owner with nothing new.

The per-identity setting lives in ``state/identity_settings.json``::

    {"<own FP>": {"share_comments_group": "<group name>"}}

When set, comments addressed to others are also served to members of that
group ("Ahmed can choose to broadcast comments to Camal").
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any

from ..base import names
from ..base.datadir import DataDir
from ..base.errors import BadInput, NotFound
from ..base.statefile import StateFile
from ..identity.identities import Identities
from ..posts.index import Index
from ..posts.ingest import post_path
from ..posts.reconcile import open_index
from . import exchange
from .nonces import NonceStore

log = logging.getLogger("diwan.feeds")

SETTINGS_NAME = "identity_settings"
SHARE_COMMENTS = "share_comments_group"

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


def serve_feed(dd: DataDir, owner_fp: str, body: bytes, *, now: int | None = None) -> bytes:
    """Answer a sealed feed request for ``owner_fp``; the sealed response bytes.

    :class:`NotFound` unless ``owner_fp`` is an own identity; any malformed,
    unauthenticated, stale or replayed request raises a 4xx error before
    anything is read from ``posts/``.
    """
    ids = Identities(dd)
    secret = _own_transport_secret(ids, owner_fp)
    s = dd.settings
    t = int(time.time()) if now is None else now
    req = exchange.open_request(body, owner_fp=owner_fp, owner_transport_secret=secret, now=t,
                                window=s["request_window"], max_limit=s["max_page_size"])
    NonceStore(dd).use(req.nonce, req.time, now=t, window=s["request_window"])
    posts: list[bytes] = []
    more = False
    if not ids.is_blocked(req.asker_fp):
        posts, more = _select(dd, ids, req)
    return exchange.seal_response(req, owner_transport_secret=secret, posts=posts, more=more)


# (path, inode, mtime, size of the key file, then of the .pub) -> secret
_secrets: dict[tuple[str, int, int, int, int, int, int], bytes] = {}


def _own_transport_secret(ids: Identities, fp: str) -> bytes:
    """The current transport secret of an own identity; :class:`NotFound` for any other ``fp``.

    Read once, then again only if the private key file or the ``.pub`` changes
    (a rotation writes the key file first, then the ``.pub`` that makes the new
    key current).
    """
    path = str(ids.private_path(fp))
    try:
        st = os.stat(path)
        pub = os.stat(ids.pub_path(fp))
    except FileNotFoundError:
        raise NotFound(f"no feed for {fp} here", field="fingerprint") from None
    stamp = (path, st.st_ino, st.st_mtime_ns, st.st_size, pub.st_ino, pub.st_mtime_ns,
             pub.st_size)
    secret = _secrets.get(stamp)
    if secret is None:
        secret = ids.transport_secret(fp)
        if len(_secrets) >= 256:
            _secrets.clear()
        _secrets[stamp] = secret
    return secret


def _select(dd: DataDir, ids: Identities, req: exchange.FeedRequest) -> tuple[list[bytes], bool]:
    """The page of posts ``req.asker_fp`` may see, bounded by ``max_response_bytes``."""
    shas, more = _index(dd).feed_page(
        req.owner_fp, req.asker_fp, after_time=req.after_time, after_sha=req.after_sha,
        limit=req.limit, comment_viewers=comment_viewers(dd, ids, req.owner_fp))
    folder = str(post_path(dd, req.owner_fp, "0" * 40).parent)  # names checked once
    posts = [raw for raw in (_read_post(os.path.join(folder, names.sha1(sha)))
                             for sha in shas) if raw is not None]
    kept, cut = exchange.fit_page(posts, req.owner_fp, dd.settings["max_response_bytes"])
    return kept, more or cut


def _read_post(path: str) -> bytes | None:
    """A post file's bytes; None if it vanished or is not UTF-8 (it cannot be a JSON string)."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
        raw.decode("utf-8")
    except FileNotFoundError:
        return None
    except UnicodeDecodeError:
        log.warning("not serving %s: not UTF-8", os.path.basename(path))
        return None
    return raw


def comment_viewers(dd: DataDir, ids: Identities, owner_fp: str) -> frozenset[str]:
    """Members of the owner's comment-sharing group (empty if none is set or it is gone)."""
    group = get_share_comments_group(dd, owner_fp)
    if group is None:
        return frozenset()
    try:
        return frozenset(ids.members(group))
    except NotFound:
        return frozenset()


_settings_cache: dict[str, tuple[tuple[int, int, int], dict[str, Any]]] = {}


def _identity_settings(dd: DataDir) -> dict[str, Any]:
    """``state/identity_settings.json``, parsed again only when the file changes."""
    path = os.path.join(dd.state, SETTINGS_NAME + ".json")
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return {}
    stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
    cached = _settings_cache.get(path)
    if cached is None or cached[0] != stamp:
        if len(_settings_cache) >= 64:
            _settings_cache.clear()
        cached = _settings_cache[path] = (stamp, StateFile(dd, SETTINGS_NAME).read())
    return cached[1]


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
