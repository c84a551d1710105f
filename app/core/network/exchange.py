"""The encrypted, authenticated feed exchange (pure: bytes in, bytes out).

The asker A wants posts of the owner O. A makes an ephemeral X25519 key pair
``(e, E)`` for this one request, then (normative in ``docs/protocol.md``)::

    inner    = Box(A.transport_secret -> O.transport_public, request JSON)
    frame    = 0x01 || E (32) || len(A.pub) (2, BE) || A.pub || len(inner) (2, BE) || inner
    request  = SealedBox(O.transport_public, frame)                  # the POST body
    response = Box(O.transport_secret -> E, response JSON)           # the 200 body

The request JSON names the asker, the owner, the ephemeral key, a fresh nonce
and the time; the owner checks that they match the seal it opened. The
response JSON echoes the nonce and names the owner. Only O can open the
request; only the holder of ``e`` (thrown away after the response) can open
the response, so a recorded exchange stays closed even if A's long-term keys
leak. Nothing here checks replay: the caller records the nonce
(:class:`app.core.network.nonces.NonceStore`).
"""

from __future__ import annotations

import dataclasses
import functools
import hmac
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..base import crypto, names, strictjson
from ..base.encoding import b64d, b64e
from ..base.errors import (
    BadInput,
    BadRequestEnvelope,
    BadResponse,
    CannotDecrypt,
    Replay,
    TooLarge,
    UnusableKey,
)
from ..identity import keys

VERSION = 1
FRAME_VERSION = b"\x01"
REQUEST_TYPE = "feed-request"
RESPONSE_TYPE = "feed-response"
NONCE_BYTES = 24
EPHEMERAL_BYTES = crypto.PUBLIC_KEY_BYTES
BOX_OVERHEAD = 40    # 24-byte nonce + 16-byte Poly1305 tag (crypto_box)
SEAL_OVERHEAD = 48   # 32-byte ephemeral key + 16-byte tag (crypto_box_seal)
MAX_PUB_BYTES = keys.MAX_PUB_BYTES
MAX_INNER_BYTES = 1024
MAX_REQUEST_BYTES = SEAL_OVERHEAD + 1 + EPHEMERAL_BYTES + 2 + MAX_PUB_BYTES + 2 + MAX_INNER_BYTES
MAX_TIME = 2**53 - 1  # the largest integer every JSON implementation keeps exactly

_REQUEST_KEYS = frozenset({"v", "type", "asker", "owner", "after_time", "after_sha", "limit",
                           "nonce", "time", "ephemeral"})
_RESPONSE_KEYS = frozenset({"v", "type", "owner", "nonce", "posts", "more"})


@dataclass(frozen=True)
class OwnKeys:
    """What the asker needs of its own identity: no password, the seed stays sealed."""

    fp: str
    pub_document: bytes
    transport_secret: bytes = field(repr=False)


@dataclass(frozen=True)
class PendingRequest:
    """What the asker keeps until the response arrives (then drops, with ``e``)."""

    owner_fp: str
    owner_transport: bytes
    ephemeral_secret: bytes = field(repr=False)
    nonce: bytes
    limit: int
    time: int


@dataclass(frozen=True)
class FeedRequest:
    """An opened, authenticated request (not yet checked for replay)."""

    asker_fp: str
    asker_key: keys.PublicKey
    owner_fp: str
    ephemeral_public: bytes
    after_time: int
    after_sha: str | None
    limit: int
    nonce: bytes
    time: int


@dataclass(frozen=True)
class FeedResponse:
    posts: list[bytes]
    more: bool


def _dumps(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


# --- the asker's side ---------------------------------------------------------------

def encode_request(*, asker_fp: str, owner_fp: str, after_time: int, after_sha: str | None,
                   limit: int, nonce: bytes, time: int, ephemeral_public: bytes) -> bytes:
    """The request JSON: compact, keys sorted, ASCII."""
    return _dumps({"v": VERSION, "type": REQUEST_TYPE, "asker": asker_fp, "owner": owner_fp,
                   "after_time": after_time, "after_sha": after_sha, "limit": limit,
                   "nonce": b64e(nonce), "time": time, "ephemeral": b64e(ephemeral_public)})


def frame_request(pub_document: bytes, ephemeral_public: bytes, inner_box: bytes) -> bytes:
    """The plaintext of the outer seal (see the module docstring)."""
    if len(ephemeral_public) != EPHEMERAL_BYTES:
        raise BadInput("the ephemeral key must be 32 bytes", field="ephemeral")
    if not 0 < len(pub_document) <= MAX_PUB_BYTES:
        raise BadInput("the .pub document is empty or too long", field="public_key")
    if not 0 < len(inner_box) <= MAX_INNER_BYTES:
        raise BadInput("the inner request is empty or too long", field="request")
    return b"".join((FRAME_VERSION, ephemeral_public, len(pub_document).to_bytes(2, "big"),
                     pub_document, len(inner_box).to_bytes(2, "big"), inner_box))


def build_request(*, asker: OwnKeys, owner_fp: str, owner_key: keys.PublicKey, after_time: int,
                  after_sha: str | None, limit: int, now: int) -> tuple[bytes, PendingRequest]:
    """A sealed feed request for ``owner_fp`` and what to keep to open its response."""
    return build_request_with(asker=asker, owner_fp=owner_fp, owner_key=owner_key,
                              after_time=after_time, after_sha=after_sha, limit=limit, now=now,
                              ephemeral_secret=crypto.new_transport_secret(),
                              nonce=crypto.random_bytes(NONCE_BYTES))


def build_request_with(*, asker: OwnKeys, owner_fp: str, owner_key: keys.PublicKey,
                       after_time: int, after_sha: str | None, limit: int, now: int,
                       ephemeral_secret: bytes, nonce: bytes) -> tuple[bytes, PendingRequest]:
    """:func:`build_request` with the ephemeral key and nonce given (for sample vectors)."""
    names.fingerprint(owner_fp, field="owner")
    if owner_key.fingerprint != owner_fp:
        raise BadInput("the owner's key does not match the owner's fingerprint", field="owner")
    if crypto.transport_public(asker.transport_secret) != keys.parse_pub(
            asker.pub_document, expected_fp=asker.fp).transport:
        raise BadInput("the transport secret does not belong to the asker's .pub", field="asker")
    _check_cursor(after_time, after_sha, limit, now, nonce)
    ephemeral = crypto.transport_public(ephemeral_secret)
    inner = crypto.box_encrypt(asker.transport_secret, owner_key.transport, encode_request(
        asker_fp=asker.fp, owner_fp=owner_fp, after_time=after_time, after_sha=after_sha,
        limit=limit, nonce=nonce, time=now, ephemeral_public=ephemeral))
    body = crypto.seal(owner_key.transport, frame_request(asker.pub_document, ephemeral, inner))
    return body, PendingRequest(owner_fp, owner_key.transport, ephemeral_secret, nonce, limit, now)


def _check_cursor(after_time: int, after_sha: str | None, limit: int, now: int,
                  nonce: bytes) -> None:
    for name, value in (("after_time", after_time), ("time", now), ("limit", limit)):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_TIME:
            raise BadInput(f"{name} must be an integer from 0 to 2^53-1", field=name)
    if limit < 1:
        raise BadInput("limit must be at least 1", field="limit")
    if after_sha is not None:
        names.sha1(after_sha, field="after_sha")
    if len(nonce) != NONCE_BYTES:
        raise BadInput(f"the nonce must be {NONCE_BYTES} bytes", field="nonce")


def open_response(body: bytes, pending: PendingRequest, *, max_bytes: int) -> FeedResponse:
    """Open the owner's answer to ``pending``; :class:`BadResponse` if anything is off."""
    if len(body) > max_bytes:
        raise BadResponse(f"the response is larger than {max_bytes} bytes")
    try:
        plain = crypto.box_decrypt(pending.ephemeral_secret, pending.owner_transport, body)
        doc = _loads(plain, _RESPONSE_KEYS, RESPONSE_TYPE)
    except BadInput as exc:
        raise BadResponse(f"the response could not be opened: {exc.message}") from None
    if doc["owner"] != pending.owner_fp:
        raise BadResponse("the response names another owner")
    if not isinstance(doc["nonce"], str) or not hmac.compare_digest(
            doc["nonce"].encode("ascii", "replace"), b64e(pending.nonce).encode("ascii")):
        raise BadResponse("the response does not echo this request's nonce")
    posts, more = doc["posts"], doc["more"]
    if not isinstance(more, bool) or not isinstance(posts, list):
        raise BadResponse("the response's posts or more field has the wrong type")
    if len(posts) > pending.limit or not all(isinstance(p, str) for p in posts):
        raise BadResponse("the response holds more posts than asked for, or non-strings")
    try:
        return FeedResponse([p.encode("utf-8") for p in posts], more)
    except UnicodeEncodeError:  # "\ud800" is valid JSON but not a character
        raise BadResponse("a post in the response is not valid Unicode") from None


# --- the owner's side ------------------------------------------------------------------

def parse_frame(frame: bytes) -> tuple[bytes, bytes, bytes]:
    """Split an opened seal into (pub document, ephemeral public, inner box); strict."""
    if frame[:1] != FRAME_VERSION:
        raise BadRequestEnvelope("unknown request frame version", field="body")
    ephemeral, pos = frame[1:1 + EPHEMERAL_BYTES], 1 + EPHEMERAL_BYTES
    pub, pos = _field(frame, pos, MAX_PUB_BYTES, "public_key")
    inner, pos = _field(frame, pos, MAX_INNER_BYTES, "request")
    if len(ephemeral) != EPHEMERAL_BYTES or pos != len(frame):
        raise BadRequestEnvelope("the request frame has a wrong length", field="body")
    return pub, ephemeral, inner


def _field(frame: bytes, pos: int, limit: int, name: str) -> tuple[bytes, int]:
    if pos + 2 > len(frame):
        raise BadRequestEnvelope(f"the request frame ends before {name}", field="body")
    size = int.from_bytes(frame[pos:pos + 2], "big")
    if not 0 < size <= limit or pos + 2 + size > len(frame):
        raise BadRequestEnvelope(f"the request frame's {name} length is wrong", field="body")
    return frame[pos + 2:pos + 2 + size], pos + 2 + size


_CACHE_SIZE = 4096
_pub_cache: dict[bytes, keys.PublicKey] = {}
_box_keys: dict[tuple[bytes, bytes], bytes] = {}


def _asker_key(document: bytes) -> keys.PublicKey:
    """Parse and verify the asker's .pub (verified documents are cached by their bytes)."""
    key = _pub_cache.get(document)
    if key is None:
        key = keys.parse_pub(document)
        if len(_pub_cache) >= _CACHE_SIZE:
            _pub_cache.clear()
        _pub_cache[document] = key
    return key


def _box_key(my_secret: bytes, their_public: bytes) -> bytes:
    """The crypto_box key of two transport keys, remembered (one X25519 per pair of keys).

    Contacts ask again and again with the same transport key, and the response
    key computed while opening a request is needed again to seal the response.
    """
    pair = (my_secret, their_public)
    key = _box_keys.get(pair)
    if key is None:
        key = crypto.box_key(my_secret, their_public)
        if len(_box_keys) >= _CACHE_SIZE:
            _box_keys.clear()
        _box_keys[pair] = key
    return key


def open_request(body: bytes, *, owner_fp: str, owner_transport_secret: bytes, now: int,
                 window: int, max_limit: int) -> FeedRequest:
    """Open and authenticate a request for ``owner_fp``; every failure is a 4xx error.

    A ``limit`` above ``max_limit`` is lowered to it (the asker reads ``more``).
    """
    if len(body) > MAX_REQUEST_BYTES:
        raise TooLarge(f"a feed request is at most {MAX_REQUEST_BYTES} bytes", field="body")
    if len(body) < SEAL_OVERHEAD:
        raise BadRequestEnvelope("the request is too short", field="body")
    try:
        frame = crypto.unseal(owner_transport_secret, body)
    except CannotDecrypt:
        raise CannotDecrypt("the request is damaged or not sealed to this identity's "
                            "transport key", field="body") from None
    pub, ephemeral, inner = parse_frame(frame)
    asker = _asker_key(pub)
    try:
        plain = crypto.box_decrypt_with_key(_box_key(owner_transport_secret, asker.transport),
                                            inner)
    except CannotDecrypt:
        raise CannotDecrypt("the inner request is damaged or not from the transport key "
                            "certified in the asker's .pub", field="request") from None
    doc = _loads(plain, _REQUEST_KEYS, REQUEST_TYPE)
    req = _request_fields(doc, asker)
    if req.owner_fp != owner_fp:
        raise BadRequestEnvelope("the request is for another identity", field="owner")
    if not hmac.compare_digest(req.ephemeral_public, ephemeral):
        raise BadRequestEnvelope("the ephemeral key was changed", field="ephemeral")
    try:
        _box_key(owner_transport_secret, ephemeral)  # the response key, checked before use
    except UnusableKey:
        raise UnusableKey(field="ephemeral") from None
    if abs(now - req.time) > window:
        raise Replay("the request time is outside the accepted window", field="time")
    if req.limit > max_limit:  # nodes may differ in max_page_size: serve a shorter page
        req = dataclasses.replace(req, limit=max_limit)
    return req


def _request_fields(doc: dict[str, Any], asker: keys.PublicKey) -> FeedRequest:
    if doc["asker"] != asker.fingerprint:
        raise BadRequestEnvelope("the request names another asker than its key", field="asker")
    try:
        owner = names.fingerprint(doc["owner"], field="owner")
        nonce = b64d(doc["nonce"] if isinstance(doc["nonce"], str) else "!", length=NONCE_BYTES,
                     what="nonce")
        ephemeral = b64d(doc["ephemeral"] if isinstance(doc["ephemeral"], str) else "!",
                         length=EPHEMERAL_BYTES, what="ephemeral")
        _check_cursor(doc["after_time"], doc["after_sha"], doc["limit"], doc["time"], nonce)
    except BadRequestEnvelope:
        raise
    except BadInput as exc:
        raise BadRequestEnvelope(f"request: {exc.message}", field=exc.field or "body") from None
    return FeedRequest(asker.fingerprint, asker, owner, ephemeral, doc["after_time"],
                       doc["after_sha"], doc["limit"], nonce, doc["time"])


def encode_response(*, owner_fp: str, nonce: bytes, posts: Sequence[str], more: bool) -> bytes:
    """The response JSON: compact, keys sorted, UTF-8."""
    return _dumps({"v": VERSION, "type": RESPONSE_TYPE, "owner": owner_fp,
                   "nonce": b64e(nonce), "posts": list(posts), "more": more})


def seal_response(req: FeedRequest, *, owner_transport_secret: bytes, posts: list[bytes],
                  more: bool) -> bytes:
    """The response body: a Box from the owner's transport key to the request's ephemeral key."""
    texts = [p.decode("utf-8") for p in posts]
    plain = encode_response(owner_fp=req.owner_fp, nonce=req.nonce, posts=texts, more=more)
    return crypto.box_encrypt_with_key(_box_key(owner_transport_secret, req.ephemeral_public),
                                       plain)


@functools.lru_cache(maxsize=64)
def _empty_size(owner_fp: str) -> int:
    return len(encode_response(owner_fp=owner_fp, nonce=bytes(NONCE_BYTES), posts=[],
                               more=False))


def response_size(posts: Sequence[bytes], owner_fp: str) -> int:
    """The exact size of the sealed response carrying ``posts`` (with ``more`` false)."""
    return BOX_OVERHEAD + _empty_size(owner_fp) + sum(map(_post_cost, posts)) - (
        1 if posts else 0)


_NEEDS_ESCAPE = re.compile(rb'[^\x20\x21\x23-\x5b\x5d-\x7e]')  # all JSON might escape


def _post_cost(post: bytes) -> int:
    """Bytes a post adds to the response JSON: its JSON string and a comma."""
    if _NEEDS_ESCAPE.search(post) is None:  # post files are printable ASCII: quotes only
        return len(post) + 3
    return len(json.dumps(post.decode("utf-8"), ensure_ascii=False).encode()) + 1


def fit_page(posts: Sequence[bytes], owner_fp: str, max_bytes: int) -> tuple[list[bytes], bool]:
    """The longest prefix of ``posts`` whose sealed response fits ``max_bytes``.

    Returns (kept, cut); ``cut`` is True when posts were left out. The first
    post is always kept, so a page is never empty while posts remain (a node
    must allow ``max_response_bytes`` above ``max_post_bytes``).
    """
    total = response_size([], owner_fp) - 1  # the sizes of the posts' commas follow
    kept: list[bytes] = []
    for post in posts:
        total += _post_cost(post)
        if kept and total > max_bytes:
            return kept, True
        kept.append(post)
    return kept, False


# --- strict JSON -----------------------------------------------------------------------

def _loads(plain: bytes, expected: frozenset[str], kind: str) -> dict[str, Any]:
    """A JSON object with exactly the ``expected`` keys, version and type."""
    try:
        doc = strictjson.loads(plain, what=f"the {kind}")
    except BadInput as exc:
        raise BadRequestEnvelope(exc.message, field="body") from None
    if not isinstance(doc, dict) or set(doc) != expected:
        raise BadRequestEnvelope(f"the {kind} must be an object with exactly the keys "
                                 + ", ".join(sorted(expected)), field="body")
    if type(doc["v"]) is not int or doc["v"] != VERSION or doc["type"] != kind:
        raise BadRequestEnvelope(f"not a version {VERSION} {kind}", field="body")
    return doc
