"""Nodes of one identity pulling each other's copy of its feed (README, "Your own always-on
node"; docs/protocol.md, "Several nodes of one identity").

For each own identity with other nodes (:mod:`ownnodes`), this node asks each of
them, as that identity, for the identity's own feed through the ordinary
exchange. The owner's node sees the asker is the identity itself (a device its
``.pub`` certifies) and serves every post the identity wrote; the request's
``reply`` member tells it where this node answers, so it pulls back. Posts are
independent signed files named by their hash, so copies from several writers
merge without conflict: a post is stored once whichever node it came from.
The asking node then asks, inside the exchange, for the keys of the people the
identity's posts are addressed to that it lacks, so it can serve them too.

Per-node status lives in ``state/own_sync.json`` (``"<FP> <address>"`` → a
:class:`SyncStatus`, its ``cursors`` the place in that node's storage order, as a
follower's: :mod:`.follow`); the first pull from a node compares the whole feed.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import requests

from ..base.datadir import DataDir
from ..base.errors import DiwanError
from ..base.fsio import file_lock
from ..base.statefile import StateFile
from ..identity import keys
from ..identity.identities import Identities
from ..posts.reconcile import open_index
from ..posts.wholefeed import addressees
from . import peerclient
from .addresses import peer_urls
from .contacts import Contact
from .exchange import MAX_KEYS, MAX_TIME, build_request, open_response
from .ownnodes import OwnNodes
from .sync import (
    FEED_CONTENT_TYPE,
    _Run,  # one pull of one feed: the own-node sync is a pull like a contact's
)
from .syncstatus import SyncStatus, finish_run, start_run

log = logging.getLogger("diwan.ownsync")

STATUS = "own_sync"


def sync_own_node(dd: DataDir, fp: str, address: str) -> dict[str, Any]:
    """Pull ``fp``'s feed from its other node at ``address``; never raises for the peer.

    Returns ``{"identity", "address", "state", "posts_last_run", "last_error",
    "last_success"}`` (the stored status of that node).
    """
    key, store = f"{fp} {address}", StateFile(dd, STATUS)
    with file_lock(dd.locks / f"ownsync-{fp}.lock"):
        status = SyncStatus.from_dict(fp, store.read().get(key))
        first = status.last_success is None
        me = Contact(fp, (address,), fp, 0.0)
        start_run(status, address, fp, time.time())
        error: str | None = None
        session = peerclient.new_session()
        try:
            run = _Run(dd, me, status, session, full=first)
            mine = peer_urls(dd.settings)
            run.hello = {"reply": mine[0]} if mine else {}
            run.pull()
            try:
                _addressee_keys(dd, run, session)
            except DiwanError as exc:  # the posts are in; the keys come next time
                log.info("keys of %s's addressees from %s: %s", fp, address, exc.message)
        except DiwanError as exc:
            error = exc.message
        except Exception as exc:  # a bug must not stop the other nodes
            log.exception("own-node sync of %s at %s failed", fp, address)
            error = f"internal error ({type(exc).__name__}); see the log"
        finally:
            session.close()
        finish_run(dd.settings, status, error, time.time)
        with store.update() as data:
            data[key] = status.to_dict()
    return _view(fp, address, status)


def _addressee_keys(dd: DataDir, run: _Run, session: requests.Session) -> int:
    """Ask the other node, inside the exchange, for the keys of the people the identity's
    posts are addressed to that this node lacks (at most ``key_lookup_limit``), so that
    it can serve those posts to them too; returns how many were stored."""
    ids, fp, s = Identities(dd), run.contact.fingerprint, dd.settings
    missing = [x for x in addressees(open_index(dd), fp) if not ids.exists(x)]
    if run.device is None:  # no page was answered: nobody to ask
        return 0
    stored, asker = 0, run.asker()
    for i in range(0, min(len(missing), s["key_lookup_limit"]), MAX_KEYS):
        wanted = missing[i:i + MAX_KEYS]
        body, pending = build_request(asker=asker, owner_fp=fp,
                                      owner_transport=run.device.transport_public,
                                      after=MAX_TIME, limit=1, now=int(time.time()),
                                      want_keys=wanted)
        answer = peerclient.call(session, "POST", f"{run.contact.address}/feeds/{fp}",
                                 data=body, content_type=FEED_CONTENT_TYPE,
                                 timeout=s["sync_timeout"], max_bytes=s["max_response_bytes"])
        if answer.status != 200:
            break
        for document in open_response(answer.body, pending,
                                      max_bytes=s["max_response_bytes"]).keys:
            if keys.parse_pub(document).fingerprint in wanted:
                ids.import_pub(document)
                stored += 1
    return stored


def _view(fp: str, address: str, st: SyncStatus) -> dict[str, Any]:
    return {"identity": fp, "address": address, "state": st.state(),
            "posts_last_run": st.posts_last_run, "last_error": st.last_error,
            "last_success": st.last_success}


def sync_own_nodes(dd: DataDir, only: str | None = None) -> list[dict[str, Any]]:
    """Pull every own identity's feed (or ``only`` that one's) from each of its other
    nodes, one after another; the results of :func:`sync_own_node`."""
    ids, out = Identities(dd), []
    for fp, addresses in OwnNodes(dd).all().items():
        if (only is None or fp == only) and ids.is_own(fp):
            out += [sync_own_node(dd, fp, a) for a in addresses]
    return out


def own_node_statuses(dd: DataDir) -> list[dict[str, Any]]:
    """The stored status of every other node of every own identity."""
    stored = StateFile(dd, STATUS).read()
    return [_view(fp, a, SyncStatus.from_dict(fp, stored.get(f"{fp} {a}")))
            for fp, addresses in OwnNodes(dd).all().items() for a in addresses]
