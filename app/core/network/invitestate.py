"""Making, redeeming and following up invites (docs/protocol.md, Invites; README, "Reaching
friends on other machines").

The inviter's node keeps the invites it made in ``state/invites.json``, keyed by
the SHA-256 of each one-time token (the token itself is not kept)::

    {"<sha256 hex>": {"identity": "<own FP>", "created": t, "expires": t,
                      "used_by": "<FP>" | null, "used_at": t | null,
                      "refused": n, "last_refusal": "why" | null}}

Both sides keep, per contact that came from an invite, ``state/invite_links.json``::

    {"<contact FP>": {"role": "invitee" | "inviter", "identity": "<own FP>", "since": t,
                      "expires": t, "token": "<base64url>" | null, "confirmed": t | null}}

The invitee sends the token (and its own address) inside the encrypted request
of each sync of the inviter's feed until the inviter's node follows back (its
first authenticated request to the invitee confirms the link) or the invite
expires. The inviter's node, on the first authenticated request carrying a token
it made, unused and unexpired, stores the asker's key and follows it back at the
address it gave: one invite makes a mutual follow. Any other token does nothing
but count a refusal. :func:`link_state` tells both sides where it stands.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from typing import Any

from ..base import crypto, names
from ..base.datadir import DataDir
from ..base.encoding import b64d, b64e
from ..base.errors import Conflict, DiwanError
from ..base.statefile import StateFile, read_cached
from ..identity.identities import Identities
from . import invites
from .contacts import Contact, Contacts
from .ownnodes import OwnNodes
from .reach import own_reach
from .syncstatus import SyncStatus

log = logging.getLogger("diwan.invites")

ISSUED = "invites"
LINKS = "invite_links"
KEEP_AFTER_EXPIRY = 7 * 86400  # an expired, unused invite is listed this long, then dropped


def _hash(token: bytes) -> str:
    return hashlib.sha256(token).hexdigest()


def node_addresses(dd: DataDir, fp: str) -> list[str]:
    """Where ``fp`` can be reached: what this node tells its contacts (``public_url``, a
    live router mapping, the peer port's addresses: :func:`.reach.own_reach`), then the
    identity's other nodes."""
    return list(dict.fromkeys(own_reach(dd, time.time()) + OwnNodes(dd).addresses(fp)))


def make(dd: DataDir, fp: str, seed: bytes, *, token: bool = True, now: float | None = None,
         expiry: int | None = None) -> tuple[str, invites.Invite]:
    """A new invite for the own identity ``fp`` whose opened seed is ``seed``.

    Expires after ``expiry`` seconds (default: the ``invite_expiry`` setting); with
    ``token`` it carries a fresh one-time token, remembered here by its hash.
    Returns ``(invite string, what it says)``. :class:`BadInput` if this node has no
    reachable address (:func:`invites.make_invite`).
    """
    t = time.time() if now is None else now
    expires = int(t) + int(dd.settings["invite_expiry"] if expiry is None else expiry)
    secret = crypto.random_bytes(invites.TOKEN_BYTES) if token else None
    text = invites.make_invite(seed, Identities(dd).pub_document(fp), node_addresses(dd, fp),
                               expires, secret)
    if secret is not None:
        with StateFile(dd, ISSUED).update() as data:
            for key in [k for k, v in data.items() if v["expires"] + KEEP_AFTER_EXPIRY < t]:
                del data[key]
            data[_hash(secret)] = {"identity": fp, "created": t, "expires": expires,
                                   "used_by": None, "used_at": None, "refused": 0,
                                   "last_refusal": None}
    return text, invites.parse_invite(text, now=t)


def issued(dd: DataDir, now: float | None = None) -> list[dict[str, Any]]:
    """The invites with a token this node made, newest first, each with its ``state``:
    ``waiting`` (unused), ``used`` (``used_by`` followed back) or ``expired``."""
    t = time.time() if now is None else now
    out = []
    for key, v in StateFile(dd, ISSUED).read().items():
        state = "used" if v["used_by"] else ("expired" if v["expires"] < t else "waiting")
        out.append({**v, "id": key[:16], "state": state})
    return sorted(out, key=lambda v: -v["created"])


def _find(data: dict[str, Any], token: bytes) -> str | None:
    wanted = _hash(token)
    found = None
    for key in data:
        if hmac.compare_digest(key, wanted):
            found = key
    return found


def redeem(dd: DataDir, owner_fp: str, asker_fp: str, asker_pub: bytes, token: bytes,
           reply: str | None, *, now: float) -> str:
    """The inviter's side: an authenticated asker presented ``token`` for ``owner_fp``.

    If it is a token this node made for ``owner_fp``, unused and unexpired, and
    ``reply`` is an address: store the asker's ``.pub``, follow it back there as
    ``owner_fp`` (an existing contact is left as it is) and mark the token used.
    Returns ``"accepted"`` or why nothing was done (``"unknown"``, ``"used"``,
    ``"expired"``, ``"no reply address"``, ``"refused: ..."``); never raises for
    the asker's input, so the exchange answers as usual.
    """
    with StateFile(dd, ISSUED).update() as data:
        key = _find(data, token)
        entry = data.get(key) if key else None
        if entry is None or entry["identity"] != owner_fp:
            return "unknown"
        why = ("used" if entry["used_by"] else "expired" if entry["expires"] < now
               else "no reply address" if reply is None else None)
        if why is None:
            try:
                _follow_back(dd, owner_fp, asker_fp, asker_pub, reply or "", now)
            except DiwanError as exc:
                why = f"refused: {exc.message}"
        if why is not None:
            entry["refused"] += 1
            entry["last_refusal"] = why
            log.info("invite token for %s presented by %s: %s", owner_fp, asker_fp, why)
            return why
        entry["used_by"], entry["used_at"] = asker_fp, now
    log.info("invite for %s redeemed by %s: following back at %s", owner_fp, asker_fp, reply)
    return "accepted"


def _follow_back(dd: DataDir, owner_fp: str, asker_fp: str, pub: bytes, reply: str,
                 now: float) -> None:
    book = Contacts(dd)
    book.check_new(asker_fp, owner_fp)
    Identities(dd).import_pub(pub, expected_fp=asker_fp)
    if book.find(asker_fp) is None:
        book.put(asker_fp, reply, owner_fp)
    with StateFile(dd, LINKS).update() as links:
        links[asker_fp] = {"role": "inviter", "identity": owner_fp, "since": now,
                           "expires": now, "token": None, "confirmed": None}


def accept(dd: DataDir, text: str, identity: str, *, replace: bool = False,
           now: float | None = None) -> tuple[Contact, bool, invites.Invite]:
    """The invitee's side: follow the inviter of invite ``text`` as the own ``identity``.

    Verifies the invite (:func:`invites.parse_invite`: :class:`BadInvite`), checks the
    contact (:meth:`Contacts.check_new`), stores the inviter's ``.pub`` and follows it
    at the invite's addresses; a token is remembered to be sent on the next syncs.
    An existing contact at another address needs ``replace`` (:class:`Conflict`).
    Returns ``(contact, created, invite)``.
    """
    t = time.time() if now is None else now
    invite = invites.parse_invite(text, now=t)
    fp, book = invite.fingerprint, Contacts(dd)
    book.check_new(fp, identity)
    old = book.find(fp)
    if old is not None and not replace and (old.address not in invite.addresses
                                            or old.identity != identity):
        raise Conflict(f"{fp} is already followed at {old.address} as {old.identity}; "
                       "ask again with replace (CLI: --replace) to change it", field="address")
    Identities(dd).import_pub(invite.pub, expected_fp=fp)
    contact, created = book.put(fp, invite.addresses[0], identity, more=invite.addresses[1:])
    with StateFile(dd, LINKS).update() as links:
        links[fp] = {"role": "invitee", "identity": identity, "since": t,
                     "expires": invite.expires, "confirmed": None,
                     "token": None if invite.token is None else b64e(invite.token)}
    return contact, created, invite


def hello(dd: DataDir, contact: Contact, *, now: float | None = None) -> dict[str, Any]:
    """The optional request members for a sync of ``contact``: its invite token and this
    node's address while the invite is unconfirmed and unexpired, else nothing."""
    link = StateFile(dd, LINKS).read().get(contact.fingerprint)
    t = time.time() if now is None else now
    if not link or link["role"] != "invitee" or not link["token"] or link["confirmed"] \
            or link["expires"] < t or link["identity"] != contact.identity:
        return {}
    urls = node_addresses(dd, contact.identity)
    return {"invite": b64d(link["token"]), "reply": urls[0]} if urls else {}


def confirm(dd: DataDir, asker_fp: str, *, now: float) -> None:
    """The invitee's side: the inviter's node asked this node (authenticated): it follows."""
    link = read_cached(dd, LINKS).get(names.fingerprint(asker_fp))  # every served request
    if link and link["role"] == "invitee" and not link["confirmed"]:
        with StateFile(dd, LINKS).update() as links:
            if asker_fp in links:
                links[asker_fp]["confirmed"] = now


def link_state(dd: DataDir, contact: Contact, status: SyncStatus,
               now: float | None = None) -> dict[str, Any] | None:
    """Where an invite with ``contact`` stands, or None if it did not come from one:
    ``{"role", "state": "waiting" | "connected" | "failed", "detail"}``."""
    link = StateFile(dd, LINKS).read().get(contact.fingerprint)
    if not link:
        return None
    t = time.time() if now is None else now
    state, detail = _judge(link, status, t)
    return {"role": link["role"], "state": state, "detail": detail}


def _judge(link: dict[str, Any], st: SyncStatus, now: float) -> tuple[str, str]:
    if st.last_error and (st.last_success or 0) < (st.last_attempt or 0):
        return "failed", f"cannot sync with their node: {st.last_error} (retrying)"
    if link["role"] == "inviter":
        if st.last_success:
            return "connected", "you follow each other"
        return "waiting", "they redeemed your invite; their feed is pulled at the next sync"
    if link["token"] is None:
        return ("connected", "you follow them") if st.last_success else \
            ("waiting", "their node has not been reached yet")
    if link["confirmed"]:
        return "connected", "you follow each other"
    if link["expires"] < now:
        return "failed", ("their node did not follow back before the invite expired (its "
                          "token was already used, or expired); ask for a new invite")
    if st.last_success:
        return "waiting", "your node sent the invite; waiting for their node to follow back"
    return "waiting", "waiting to reach their node (the next sync sends the invite)"
