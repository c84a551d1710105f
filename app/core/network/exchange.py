"""The feed exchange, version 2: one Noise IK handshake in one HTTP round trip (pure).

Normative in ``docs/protocol.md`` (section "The feed exchange"). In short::

    prologue = "diwan/v2/feed-exchange" NUL "POST /feeds/" <owner FP, 64 hex>
    request  = 0x02 || key id (first 8 bytes of rs) || Noise IK message 1
               (s = asker's transport key, rs = owner's)
               payload (fixed PAYLOAD_BYTES): u16 L1 || asker .pub || u16 L2 || request JSON || 0*
               (the JSON may carry "reach": the asker's own addresses)
    response = u16 len || message 2 (payload: the owner's current .pub)
               then (u16 len || transport message)*: the page stream, padded to a size bucket
    stream   = [0x03 || u32 n || addresses] 0x04 || u32 8 || u64 epoch (0x02 || u32 n || .pub)*
               then (0x01 || u32 n || u64 position || post file)* or one summary record
               (0x05), 0x00 || more || 0x00*  (the response side: :mod:`pages`)

The request asks for what follows a position in the owner's storage order
(``epoch``, ``after``), or, with ``summary``, for the positions and SHA-1 prefixes
of those posts only (:mod:`app.core.posts.feedorder`).

The owner holds :data:`KEY_SLOTS` candidate transport keys per fingerprint
(current and previous, decoys filling empty slots) and tries exactly one on
message 1: the one the key id names, else a decoy; either way the same work.
Message 2 mixes ``ee`` and ``se``: a recorded response stays closed if either
side's long-term keys leak later, and whoever holds only the owner's key cannot
read a response meant for an asker it impersonates. Replay of message 1 is the
caller's business (:class:`app.core.network.nonces.NonceStore`).
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Sequence
from typing import Any

from ..base import crypto, names, noise, strictjson
from ..base.encoding import b64d, b64e
from ..base.errors import (
    BadInput,
    BadRequestEnvelope,
    BadResponse,
    CannotDecrypt,
    NotAuthenticated,
    Replay,
)
from ..identity import keys
from . import pages
from .contacts import normalise_address
from .exchangetypes import FeedRequest as FeedRequest  # the exchange's values, named here
from .exchangetypes import FeedResponse as FeedResponse
from .exchangetypes import OpenedRequest as OpenedRequest
from .exchangetypes import OwnKeys as OwnKeys
from .exchangetypes import PendingRequest as PendingRequest

VERSION = 2
VERSION_BYTE = b"\x02"
REQUEST_TYPE = "feed-request"
PROLOGUE_PREFIX = b"diwan/v2/feed-exchange\x00POST /feeds/"
NONCE_BYTES = 24
KEY_SLOTS = 2                      # candidate owner keys per fingerprint: current, previous
KEY_ID_BYTES = 8                   # the key id: the first bytes of the owner key asked
MAX_PUB_BYTES = keys.MAX_PUB_BYTES
MAX_REQUEST_JSON = 1024
MAX_KEYS = 8                       # others' keys one request may ask for
PAYLOAD_BYTES = 2 + MAX_PUB_BYTES + 2 + MAX_REQUEST_JSON
MESSAGE1_BYTES = noise.MESSAGE1_OVERHEAD + PAYLOAD_BYTES
REQUEST_BYTES = 1 + KEY_ID_BYTES + MESSAGE1_BYTES
MAX_TIME = 2**53 - 1               # the largest integer every JSON implementation keeps exactly
MAX_REACH = 8                      # addresses one side tells the other in one exchange

_MISS = noise.generate_keypair()   # tried when the key id names no slot: opens nothing
_REQUEST_KEYS = frozenset({"v", "type", "owner", "epoch", "after", "summary", "limit", "nonce",
                           "time", "keys"})
# reach: the asker tells its addresses and wants the owner's; invite, reply (docs/protocol.md,
# Invites and several nodes of one identity): an invite's one-time token and the asker's own
# node address, used only to follow back or by the identity's own other nodes
_OPTIONAL_KEYS = frozenset({"reach", "invite", "reply"})
INVITE_TOKEN_BYTES = 16


def prologue(owner_fp: str) -> bytes:
    """The Noise prologue binding version, route and owner: ASCII, 99 bytes."""
    return PROLOGUE_PREFIX + names.fingerprint(owner_fp, field="owner").encode("ascii")


def key_id(transport_public: bytes) -> bytes:
    """The key id naming an owner transport key in a request: its first 8 bytes (public)."""
    return transport_public[:KEY_ID_BYTES]


def request_key_id(body: bytes) -> bytes:
    """The key id of a request body (8 zero bytes for a body too short to hold one)."""
    found = body[1:1 + KEY_ID_BYTES]
    return found if len(found) == KEY_ID_BYTES else bytes(KEY_ID_BYTES)


def pick_slot(slots: Sequence[noise.Keypair], wanted: bytes) -> noise.Keypair:
    """The slot whose public key has the key id ``wanted``, else this process's decoy.

    Every slot is compared (in constant time), whichever matches: the choice
    costs the same whatever the slots hold. The decoy (random, never shown)
    opens nothing, so a wrong key id fails like any other bad request.
    """
    chosen = _MISS
    for slot in slots:
        if hmac.compare_digest(key_id(slot.public), wanted):
            chosen = slot
    return chosen


def _dumps(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


# --- the asker's side ---------------------------------------------------------------

def encode_request(*, owner_fp: str, epoch: int | None, after: int, summary: bool, limit: int,
                   nonce: bytes, time: int, keys: Sequence[str] = (),
                   reach: Sequence[str] | None = None, invite: bytes | None = None,
                   reply: str | None = None) -> bytes:
    """The request JSON: compact, keys sorted, ASCII; ``reach``, ``invite`` and ``reply``
    only when not None."""
    doc: dict[str, Any] = {"v": VERSION, "type": REQUEST_TYPE, "owner": owner_fp,
                           "epoch": epoch, "after": after, "summary": summary, "limit": limit,
                           "nonce": b64e(nonce), "time": time, "keys": list(keys)}
    if reach is not None:
        doc["reach"] = list(reach)
    if invite is not None:
        doc["invite"] = b64e(invite)
    if reply is not None:
        doc["reply"] = reply
    return _dumps(doc)


def fit_reach(reach: Sequence[str], **fields: Any) -> tuple[str, ...]:
    """The first of ``reach`` (at most :data:`MAX_REACH`, each checked with
    :func:`normalise_address`, bad ones left out) that still let the request JSON
    (``fields``: :func:`encode_request`'s other arguments) fit MAX_REQUEST_JSON."""
    out: list[str] = []
    for address in reach:
        if len(out) == MAX_REACH:
            break
        try:
            address = normalise_address(address)
        except BadInput:
            continue
        if address in out:
            continue
        if len(encode_request(**fields, reach=[*out, address])) <= MAX_REQUEST_JSON:
            out.append(address)
    return tuple(out)


def request_payload(pub_document: bytes, request_json: bytes) -> bytes:
    """Message 1's payload: both fields length-prefixed, zero-padded to PAYLOAD_BYTES."""
    if not 0 < len(pub_document) <= MAX_PUB_BYTES:
        raise BadInput("the .pub document is empty or too long", field="public_key")
    if not 0 < len(request_json) <= MAX_REQUEST_JSON:
        raise BadInput("the request JSON is empty or too long", field="request")
    body = b"".join((len(pub_document).to_bytes(2, "big"), pub_document,
                     len(request_json).to_bytes(2, "big"), request_json))
    return body.ljust(PAYLOAD_BYTES, b"\x00")


def build_request(*, asker: OwnKeys, owner_fp: str, owner_transport: bytes,
                  epoch: int | None = None, after: int = 0, summary: bool = False,
                  limit: int, now: int, want_keys: Sequence[str] = (),
                  reach: Sequence[str] | None = None,
                  ephemeral: noise.Keypair | None = None, nonce: bytes | None = None,
                  invite: bytes | None = None, reply: str | None = None
                  ) -> tuple[bytes, PendingRequest]:
    """A request body for ``owner_fp``'s node, whose transport key is ``owner_transport``:
    the posts after position ``after`` of ``epoch`` (None: no position held), or with
    ``summary`` their positions and SHA-1 prefixes, at most ``limit``.

    ``want_keys``: fingerprints (at most MAX_KEYS) of authors reshared in the owner's
    feed whose ``.pub`` the asker lacks. ``reach``: the asker's own addresses, told to
    the owner (as many as fit, :func:`fit_reach`); not None (even empty) also asks for
    the owner's addresses (docs/protocol.md, "Addresses that follow you"). ``invite``
    (an invite's 16-byte token) and ``reply`` (this node's address) are sent when given
    (docs/protocol.md, "Invites and several nodes of one identity"). ``ephemeral``
    and ``nonce`` are fixed only for sample vectors. :class:`BadInput` for a cursor out of
    range, bad fingerprints or a transport secret that is not the asker's.
    """
    names.fingerprint(owner_fp, field="owner")
    nonce = crypto.random_bytes(NONCE_BYTES) if nonce is None else nonce
    _check_cursor(epoch, after, summary, limit, now, nonce)
    _check_keys(list(want_keys))
    static = noise.keypair_from_secret(asker.transport_secret)
    if static.public not in keys.parse_pub(asker.pub_document, expected_fp=asker.fp).transports:
        raise BadInput("the transport secret does not belong to the asker's .pub", field="asker")
    hs = noise.HandshakeState.initiator(prologue(owner_fp), static, owner_transport, e=ephemeral)
    fields: dict[str, Any] = {"owner_fp": owner_fp, "epoch": epoch, "after": after,
                              "summary": summary, "limit": limit, "nonce": nonce,
                              "time": now, "keys": want_keys, "invite": invite,
                              "reply": reply}
    told = None if reach is None else fit_reach(reach, **fields)
    payload = request_payload(asker.pub_document, encode_request(**fields, reach=told))
    body = VERSION_BYTE + key_id(owner_transport) + hs.write_message(payload)
    return body, PendingRequest(owner_fp, limit, now, hs, tuple(want_keys), told, after,
                                summary)


def _check_cursor(epoch: Any, after: Any, summary: Any, limit: Any, now: Any,
                  nonce: bytes) -> None:
    for name, value in (("after", after), ("time", now), ("limit", limit)):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_TIME:
            raise BadInput(f"{name} must be an integer from 0 to 2^53-1", field=name)
    if limit < 1:
        raise BadInput("limit must be at least 1", field="limit")
    if epoch is not None and (isinstance(epoch, bool) or not isinstance(epoch, int)
                              or not 1 <= epoch <= MAX_TIME):
        raise BadInput("epoch must be null or an integer from 1 to 2^53-1", field="epoch")
    if not isinstance(summary, bool):
        raise BadInput("summary must be true or false", field="summary")
    if len(nonce) != NONCE_BYTES:
        raise BadInput(f"the nonce must be {NONCE_BYTES} bytes", field="nonce")


def _check_keys(wanted: Any) -> tuple[str, ...]:
    if not isinstance(wanted, list) or len(wanted) > MAX_KEYS:
        raise BadInput(f"keys must be a list of at most {MAX_KEYS} fingerprints", field="keys")
    out = tuple(names.fingerprint(fp if isinstance(fp, str) else "", field="keys")
                for fp in wanted)
    if len(set(out)) != len(out):
        raise BadInput("keys must not repeat a fingerprint", field="keys")
    return out


def open_response(body: bytes, pending: PendingRequest, *, max_bytes: int) -> FeedResponse:
    """Open the owner's answer to ``pending``; :class:`BadResponse` if anything is off."""
    if len(body) > max_bytes:
        raise BadResponse(f"the response is larger than {max_bytes} bytes")
    spans = pages.message_spans(body)
    try:
        owner_pub = pending.handshake.read_message(body[spans[0][0]:spans[0][1]])
        _, receive = pending.handshake.split()
        # one message copied at a time (a page may be megabytes; a sync holds two)
        stream = b"".join(receive.decrypt_with_ad(b"", body[a:b]) for a, b in spans[1:])
    except CannotDecrypt:
        raise BadResponse("the response could not be opened: not from the owner's key, "
                          "not for this request, or changed") from None
    page = pages.parse_stream(stream)
    if len(page.posts) + len(page.summary) > pending.limit:
        raise BadResponse("the response holds more posts than asked for")
    if (page.summary or page.posts) and (page.summary or page.posts)[0][0] <= pending.after:
        raise BadResponse("the response holds a position not after the one asked for")
    if (page.summary or page.posts) and (page.summary or page.posts)[-1][0] > MAX_TIME:
        raise BadResponse("the response holds a position above 2^53-1")  # increasing
    if page.posts and pending.summary or page.summary and not pending.summary:
        raise BadResponse("the response holds posts or a summary it was not asked for")
    if len(page.keys) > len(pending.keys):
        raise BadResponse("the response holds more keys than asked for")
    if page.addresses and pending.reach is None:
        raise BadResponse("the response holds addresses that were not asked for")
    if not 1 <= page.epoch <= MAX_TIME:
        raise BadResponse("the response's epoch is out of range")
    found = _addresses(page.addresses[0]) if page.addresses else []
    return FeedResponse([raw for _, raw in page.posts], page.more, owner_pub, page.keys,
                        found, page.epoch, [p for p, _ in page.posts], page.summary)


def _addresses(doc: bytes) -> list[str]:
    """The owner's address record: a JSON array of at most MAX_REACH node addresses."""
    try:
        return list(check_reach(strictjson.loads(doc, what="the address record")))
    except BadInput as exc:
        raise BadResponse(f"the response's address record: {exc.message}") from None


def check_reach(value: Any) -> tuple[str, ...]:
    """A list of at most :data:`MAX_REACH` node addresses, each checked and normalised
    (:func:`normalise_address`), repeats dropped; :class:`BadInput` (``field`` ``reach``)."""
    if not isinstance(value, list) or len(value) > MAX_REACH:
        raise BadInput(f"reach must be a list of at most {MAX_REACH} addresses", field="reach")
    try:
        return tuple(dict.fromkeys(normalise_address(a) for a in value))
    except BadInput as exc:
        raise BadInput(f"reach: {exc.message}", field="reach") from None


# --- the owner's side ------------------------------------------------------------------

def open_request(body: bytes, *, owner_fp: str, slots: Sequence[noise.Keypair]
                 ) -> OpenedRequest:
    """Open message 1 with the one key of ``slots`` its key id names (:func:`pick_slot`).

    Exactly one Noise responder runs, whatever the key id and whatever
    ``slots`` holds (real keys or decoys). Every failure up to and including
    the framing of the payload raises the one :class:`NotAuthenticated`; a
    body of the wrong size or version is tried like any other (on zero
    bytes), so it costs the same. The request JSON is checked later
    (:func:`parse_request`), once the caller has authenticated the asker.
    """
    ok_shape = len(body) == REQUEST_BYTES and body[:1] == VERSION_BYTE
    message = body[1 + KEY_ID_BYTES:] if ok_shape else bytes(MESSAGE1_BYTES)
    slot = pick_slot(slots, request_key_id(body))
    hs = noise.HandshakeState.responder(prologue(owner_fp), slot)
    try:
        payload = hs.read_message(message)
    except CannotDecrypt:
        raise NotAuthenticated() from None
    if not ok_shape:
        raise NotAuthenticated()
    pub, request_json = _payload_fields(payload)
    if hs.remote_static is None:  # read_message sets it; never None here
        raise NotAuthenticated()
    return OpenedRequest(owner_fp, hs.remote_static, pub, request_json, hs)


def _payload_fields(payload: bytes) -> tuple[bytes, bytes]:
    """(pub document, request JSON) of message 1's payload; :class:`NotAuthenticated` if bad."""
    if len(payload) != PAYLOAD_BYTES:
        raise NotAuthenticated()
    n1 = int.from_bytes(payload[:2], "big")
    n2_at = 2 + n1
    n2 = int.from_bytes(payload[n2_at:n2_at + 2], "big")
    end = n2_at + 2 + n2
    if not (0 < n1 <= MAX_PUB_BYTES and 0 < n2 <= MAX_REQUEST_JSON and end <= PAYLOAD_BYTES) \
            or payload.count(0, end) != len(payload) - end:  # zero padding (C speed)
        raise NotAuthenticated()
    return payload[2:n2_at], payload[n2_at + 2:end]


def parse_request(opened: OpenedRequest, *, now: int, window: int, max_limit: int,
                  max_summary: int | None = None) -> FeedRequest:
    """The request JSON's fields checked (strict JSON, ranges, owner, time window).

    A ``limit`` above ``max_limit`` (for a summary request: ``max_summary``, by default
    ``max_limit``) is lowered to it (the asker reads ``more``).
    :class:`BadRequestEnvelope` for a malformed request, :class:`Replay` for a stale time.
    """
    doc = _loads(opened.request_json, _REQUEST_KEYS, REQUEST_TYPE, _OPTIONAL_KEYS)
    try:
        owner = names.fingerprint(doc["owner"], field="owner")
        nonce = b64d(doc["nonce"] if isinstance(doc["nonce"], str) else "!", length=NONCE_BYTES,
                     what="nonce")
        _check_cursor(doc["epoch"], doc["after"], doc["summary"], doc["limit"], doc["time"],
                      nonce)
        wanted = _check_keys(doc["keys"])
        reach = check_reach(doc["reach"]) if "reach" in doc else None
        invite, reply = _optional(doc)
    except BadInput as exc:
        raise BadRequestEnvelope(f"request: {exc.message}", field=exc.field or "body") from None
    if owner != opened.owner_fp:
        raise BadRequestEnvelope("the request is for another identity", field="owner")
    if abs(now - doc["time"]) > window:
        raise Replay("the request time is outside the accepted window", field="time")
    top = max_limit if max_summary is None or not doc["summary"] else max_summary
    return FeedRequest(owner, doc["epoch"], doc["after"], doc["summary"],
                       min(doc["limit"], top), nonce, doc["time"], wanted, reach, invite, reply)


def _optional(doc: dict[str, Any]) -> tuple[bytes | None, str | None]:
    """The optional ``invite`` token and ``reply`` address, checked; :class:`BadInput`."""
    invite = doc.get("invite")
    if "invite" in doc:  # present: a token, never null
        invite = b64d(invite if isinstance(invite, str) else "!", length=INVITE_TOKEN_BYTES,
                      what="invite")
    return invite, normalise_address(doc["reply"]) if "reply" in doc else None


def address_part(addresses: Sequence[str] | None) -> bytes:
    """The address record for these addresses (at most MAX_REACH kept), or b"" for None."""
    if addresses is None:
        return b""
    return pages.address_record(json.dumps(list(addresses)[:MAX_REACH],
                                           separators=(",", ":")).encode("ascii"))


def respond(opened: OpenedRequest, *, owner_pub: bytes, posts: Sequence[bytes], more: bool,
            max_bytes: int, key_docs: Sequence[bytes] = (),
            addresses: Sequence[str] | None = None, epoch: int = 1,
            positions: Sequence[int] | None = None,
            summary: Sequence[tuple[int, bytes]] | None = None) -> bytes:
    """The whole response body at once (small pages, test fakes), :class:`pages.PageWriter`:
    ``addresses`` (not None) first; ``positions`` 1, 2, ... by default; or a ``summary``."""
    head = address_part(addresses) + pages.epoch_record(epoch) + b"".join(
        map(pages.key_record, key_docs))
    if summary is not None:
        head += pages.summary_record(summary)
    at = list(positions) if positions is not None else list(range(1, len(posts) + 1))
    writer = pages.PageWriter(opened.handshake, owner_pub, [len(p) for p in posts], max_bytes,
                              len(head))
    records = [head, *map(pages.post_record, posts, at)]
    return b"".join(writer.pieces(records, more))


# --- strict JSON -----------------------------------------------------------------------

def _loads(plain: bytes, expected: frozenset[str], kind: str,
           optional: frozenset[str] = frozenset()) -> dict[str, Any]:
    """A JSON object with exactly the ``expected`` keys (and any of ``optional``),
    version and type."""
    try:
        doc = strictjson.loads(plain, what=f"the {kind}")
    except BadInput as exc:
        raise BadRequestEnvelope(exc.message, field="body") from None
    if not isinstance(doc, dict) or not expected <= set(doc) <= expected | optional:
        raise BadRequestEnvelope(f"the {kind} must be an object with exactly the keys "
                                 + ", ".join(sorted(expected)), field="body")
    if type(doc["v"]) is not int or doc["v"] != VERSION or doc["type"] != kind:
        raise BadRequestEnvelope(f"not a version {VERSION} {kind}", field="body")
    return doc
