"""The post codec: ``P1.FP.SIG`` files, pure (no disk, no key store).

A post file is ASCII without a trailing newline: ``P1`` is the unpadded
base64url of a UTF-8 JSON object of attributes, ``FP`` the author's 64-hex
fingerprint and ``SIG`` the unpadded base64url Ed25519 signature of the ASCII
bytes of ``P1``. Its name is the hex SHA-1 of the whole file. The signature
covers P1's bytes, so a received post is never re-encoded; only posts built
here are encoded, compactly with sorted keys. The format is normative in
``docs/protocol.md`` (Posts). Verifying against keys, time and policy is
``ingest``'s job; this module only takes files apart and puts them together.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from ..base import crypto, strictjson
from ..base.encoding import b64d, b64e
from ..base.errors import BadInput, BadPost, Reason
from .attributes import PROFILE_TYPES, TIME_MAX, check_keys, describe, is_emoji_only, type_of

POST, COMMENT, MESSAGE, PROFILE = "post", "comment", "message", "profile"
DELETION = "deletion"  # a deletion record: never listed, served to the deleted post's audience
KINDS = (POST, COMMENT, MESSAGE, PROFILE)
CREATED = "CREATED_TIME"
_ADDRESSING = frozenset({"TIME", "FINGERPRINT", "POSTSHA"})
_HEX = b"0123456789abcdef"
_REACTION_TYPES = _ADDRESSING | {"TEXT"}
_NO_ONE: frozenset[str] = frozenset()


@dataclass(frozen=True, init=False)
class Post:
    """A decoded post file (``docs/protocol.md``, Posts: The post file and What a post means).

    ``raw`` the whole file; ``sha1`` its name (40 hex); ``author`` the FP part (64 hex);
    ``p1`` the P1 part as text; ``signature`` 64 bytes; ``attributes`` the JSON object
    exactly as signed. Decoding checks shape only; a :class:`Post` from ``ingest`` or the
    index is verified.
    """

    raw: bytes
    sha1: str
    author: str
    p1: str
    signature: bytes
    attributes: dict[str, Any] = field(compare=False)

    # What the post means, worked out once in __post_init__ (one pass over the keys) and
    # kept as plain attributes: ingest, the index and every listing read them per post.
    kind: str = field(init=False, repr=False, compare=False)
    """``deletion`` (a ``_DELETES``), ``profile`` (a profile type present), ``comment`` (a
    ``_POSTSHA``), ``message`` (a ``_FINGERPRINT``) or ``post``, in that precedence
    (``docs/protocol.md``, What a post means)."""
    recipients: frozenset[str] = field(init=False, repr=False, compare=False)
    """The fingerprints of the ``_FINGERPRINT`` attributes: empty for a public post."""
    replies_to: tuple[str, ...] = field(init=False, repr=False, compare=False)
    """The SHA-1s of the ``_POSTSHA`` attributes, in key order, without repeats."""
    deletes: tuple[str, ...] = field(init=False, repr=False, compare=False)
    """The SHA-1s a deletion record deletes (``_DELETES`` values, key order, no repeats)."""
    supersedes: tuple[str, ...] = field(init=False, repr=False, compare=False)
    """The SHA-1 an edit replaces (``_SUPERSEDES`` values; ingest allows at most one)."""
    parents: tuple[str, ...] = field(init=False, repr=False, compare=False)
    """What the post hangs under for visibility: ``_POSTSHA`` values, or for a deletion
    record its ``_PARENTSHA`` values (the deleted comment's parents)."""
    is_reaction: bool = field(init=False, repr=False, compare=False)
    """A comment whose only content is a TEXT of emoji (shown as a reaction)."""
    reshared: str | None = field(init=False, repr=False, compare=False)
    """The raw inner post of the first ``_POST`` attribute (by key order), if any."""
    types: frozenset[str] = field(init=False, repr=False, compare=False)
    """The types of its attribute keys (what follows each key's last ``_``)."""

    def __init__(self, raw: bytes, sha1: str, author: str, p1: str, signature: bytes,
                 attributes: dict[str, Any]) -> None:
        # What the generated __init__ does, one __dict__ update instead of an
        # object.__setattr__ a field: one Post is made for every post received.
        self.__dict__.update(raw=raw, sha1=sha1, author=author, p1=p1, signature=signature,
                             attributes=attributes)
        self.__post_init__()

    def __post_init__(self) -> None:
        by_type: dict[str, list[Any]] = {}  # values by type, in key order
        attrs = self.attributes
        for key in sorted(attrs):
            kind_of_key = key.rpartition("_")[2]
            if kind_of_key in by_type:
                by_type[kind_of_key].append(attrs[key])
            else:
                by_type[kind_of_key] = [attrs[key]]
        types = frozenset(by_type)
        if "DELETES" in types:
            kind = DELETION
        elif not types.isdisjoint(PROFILE_TYPES):
            kind = PROFILE
        elif "POSTSHA" in types:
            kind = COMMENT
        else:
            kind = MESSAGE if "FINGERPRINT" in types else POST
        get = by_type.get
        replies_to = _unique(get("POSTSHA"))
        fingerprints, reshares, texts = get("FINGERPRINT"), get("POST"), get("TEXT")
        text = attrs.get("TEXT")  # the body: the key TEXT itself, not any _TEXT
        # Straight into the instance's __dict__ (what object.__setattr__ does for these
        # plain fields, in one call): a frozen dataclass refuses only self.x = ...
        self.__dict__.update(
            kind=kind, recipients=frozenset(fingerprints) if fingerprints else _NO_ONE,
            replies_to=replies_to, deletes=_unique(get("DELETES")),
            supersedes=_unique(get("SUPERSEDES")),
            parents=_unique(get("PARENTSHA")) if kind == DELETION else replies_to,
            is_reaction=(kind == COMMENT and isinstance(text, str) and types <= _REACTION_TYPES
                         and texts is not None and len(texts) == 1 and is_emoji_only(text)),
            reshared=reshares[0] if reshares else None, types=types)

    @property
    def created(self) -> int:
        """``CREATED_TIME``: unix seconds (an integer >= 0, checked when decoded)."""
        value: int = self.attributes[CREATED]
        return value


def _unique(values: list[Any] | None) -> tuple[Any, ...]:
    if not values:
        return ()
    return (values[0],) if len(values) == 1 else tuple(dict.fromkeys(values))


class Parts(NamedTuple):
    """A post file split and base64-decoded, nothing checked beyond its shape (a tuple:
    one is made for every post received)."""

    raw: bytes
    p1: bytes
    author: str
    signature: bytes
    payload: bytes


def inner_authors(post: Post, max_bytes: int) -> set[str]:
    """Authors of every post reshared inside ``post``, at any depth (ingest bounds the depth).

    Inner posts that do not decode are skipped; nothing is verified here.
    """
    found: set[str] = set()
    for key, value in post.attributes.items():
        if type_of(key) == "POST" and isinstance(value, str):
            try:
                inner = decode_post(value.encode("ascii"), max_bytes=max_bytes)
            except (BadPost, UnicodeEncodeError):
                continue
            found.add(inner.author)
            found.update(inner_authors(inner, max_bytes))
    return found


def _malformed(message: str) -> BadPost:
    return BadPost(message, reason=Reason.MALFORMED, field="post")


def split_post(raw: bytes, *, max_bytes: int) -> Parts:
    """Split a post file into its parts: size cap, then structure (``docs/protocol.md``,
    Acceptance rules 1-3).

    ``max_bytes`` is the largest file accepted, in bytes. Raises :class:`BadPost` with
    ``reason`` ``too_large``, ``malformed`` (not three dot-separated ASCII parts, a trailing
    space or newline, FP not 64 hex) or ``bad_base64`` (P1 or SIG not canonical base64url,
    SIG not 64 bytes, P1 empty). Nothing else is checked.
    """
    if len(raw) > max_bytes:
        raise BadPost(f"the post is {len(raw)} bytes; this node accepts at most {max_bytes}",
                      reason=Reason.TOO_LARGE, field="post")
    if not raw.isascii():
        raise _malformed("a post file must be ASCII (P1.FP.SIG)")
    if raw[-1:].isspace():
        raise _malformed("a post file must not end with a newline or space")
    pieces = raw.split(b".")
    if len(pieces) != 3:
        raise _malformed(f"a post file is P1.FP.SIG: three parts, not {len(pieces)}")
    p1, fp, sig = pieces
    if len(fp) != 64 or fp.translate(None, _HEX):  # FINGERPRINT_RE, by a C pass
        raise _malformed("the FP part must be 64 lowercase hexadecimal characters")
    author = fp.decode("ascii")
    try:
        payload = b64d(p1, what="P1")
        signature = b64d(sig, length=crypto.SIGNATURE_BYTES, what="SIG")
    except BadInput as exc:
        raise BadPost(exc.message, reason=Reason.BAD_BASE64, field="post") from None
    if not payload:
        raise BadPost("P1 is empty", reason=Reason.BAD_BASE64, field="post")
    return Parts(raw, p1, author, signature, payload)


def _bad_json(message: str) -> BadPost:
    return BadPost(message, reason=Reason.BAD_JSON, field="post")


def parse_json(payload: bytes) -> dict[str, Any]:
    """P1's bytes as a JSON object by :func:`strictjson.loads` (UTF-8, no duplicate keys,
    finite numbers, integers within ±(2^53 - 1), bounded depth), with valid Unicode."""
    try:
        obj = strictjson.loads(payload, what="P1")
    except BadInput as exc:
        raise _bad_json(exc.message) from None
    if not isinstance(obj, dict):
        raise _bad_json("P1 must be a JSON object of attributes")
    for value in obj.values():
        if isinstance(value, str) and not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise _bad_json("P1 contains a lone UTF-16 surrogate escape") from None
    return obj


def check_created(attrs: Mapping[str, Any]) -> int:
    """``CREATED_TIME`` of ``attrs``: unix seconds, an integer from 0 to :data:`TIME_MAX`
    (not a boolean).

    Raises :class:`BadPost` (``no_created_time``) if it is missing or not such an integer.
    Whether it is too far in the future is ingest's check (``max_time_skew``).
    """
    created = attrs.get(CREATED)
    if (not isinstance(created, int) or isinstance(created, bool)
            or not 0 <= created <= TIME_MAX):
        raise BadPost(f"a post needs CREATED_TIME: an integer of unix seconds from 0 to "
                      f"{TIME_MAX}", reason=Reason.NO_CREATED_TIME, field=CREATED)
    return created


def parse_payload(payload: bytes) -> dict[str, Any]:
    """P1's bytes as attributes: a JSON object, valid key names, CREATED_TIME present, in
    that order; raises :class:`BadPost` (``bad_json``, ``bad_key``, ``no_created_time``)."""
    attrs = parse_json(payload)
    check_keys(attrs)
    check_created(attrs)
    return attrs


def make_post(parts: Parts, attrs: dict[str, Any], sha1: str | None = None) -> Post:
    """A :class:`Post` of split ``parts`` and their parsed ``attrs``; ``sha1`` (40 hex) is
    computed from the file when not given. Checks nothing and raises nothing."""
    sha1 = sha1 or hashlib.sha1(parts.raw).hexdigest()
    return Post(parts.raw, sha1, parts.author, parts.p1.decode("ascii"), parts.signature, attrs)


def decode_post(raw: bytes, *, max_bytes: int) -> Post:
    """Take a post file apart; structure and JSON only, the signature is NOT checked.

    ``max_bytes`` caps the file's size in bytes. Raises :class:`BadPost` as
    :func:`split_post` and :func:`parse_payload` do.
    """
    parts = split_post(bytes(raw), max_bytes=max_bytes)
    return make_post(parts, parse_payload(parts.payload))


def encode_payload(attrs: Mapping[str, Any]) -> bytes:
    """P1's bytes for ``attrs``: compact JSON, keys sorted, UTF-8 (non-ASCII not escaped).

    Raises :class:`BadInput` (``field`` ``attributes``) for values JSON cannot hold (bytes,
    NaN, other objects).
    """
    try:
        for value in attrs.values():
            if isinstance(value, int | float):
                strictjson.check_number(value)
        text = strictjson.dumps(attrs, separators=(",", ":"), ensure_ascii=False, sort_keys=True)
        return text.encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise BadInput(f"attributes cannot be encoded as JSON: {exc}",
                       field="attributes") from None


def build_post(seed: bytes, attributes: Mapping[str, Any]) -> bytes:
    """Sign ``attributes`` with the Ed25519 ``seed``; return the post file bytes.

    ``SIG`` is the signature of ``CTX_POST || P1`` (protocol.md, "The post file").

    Byte values (media) are base64url-encoded. Attribute names and
    CREATED_TIME are checked here; the values are validated by ingest, which
    every post passes through before it is stored (``docs/protocol.md``, The post file).
    Raises :class:`BadPost` (``bad_key`` for a name, ``no_created_time``) and
    :class:`BadInput` for a value JSON cannot hold.
    """
    attrs = {k: b64e(bytes(v)) if isinstance(v, bytes | bytearray) else v
             for k, v in attributes.items()}
    if not all(isinstance(k, str) for k in attrs):
        raise BadPost("attribute names must be strings", reason=Reason.BAD_KEY,
                      field="attributes")
    check_keys(attrs)
    check_created(attrs)
    p1 = b64e(encode_payload(attrs))
    signature = crypto.sign(seed, crypto.CTX_POST, p1.encode("ascii"))
    fp = crypto.fingerprint(crypto.signing_public(seed))
    return f"{p1}.{fp}.{b64e(signature)}".encode("ascii")


def decoded_view(post: Post) -> dict[str, Any]:
    """A JSON-able form of a (verified) post for the API: media as kind and size, not bytes.

    Keys: ``sha1, author, created, kind, public, recipients, replies_to, is_reaction,
    reshared, size`` (bytes) and ``attributes`` (key -> :func:`attributes.describe`, a
    reshared post decoded in place, or None if it does not decode). Raises
    :class:`BadInput` only for a media value that is not base64url, which a verified post
    never has.
    """
    attributes = {}
    for key in sorted(post.attributes):
        value = post.attributes[key]
        view = describe(key, value)
        if type_of(key) == "POST" and isinstance(value, str):
            del view["value"]  # the raw inner post: GET .../raw has it
            try:
                view["post"] = decoded_view(decode_post(value.encode("ascii"),
                                                        max_bytes=len(value)))
            except (BadPost, UnicodeEncodeError):
                view["post"] = None
        attributes[key] = view
    return {"sha1": post.sha1, "author": post.author, "created": post.created,
            "kind": post.kind, "public": not post.recipients,
            "recipients": sorted(post.recipients), "replies_to": list(post.replies_to),
            "is_reaction": post.is_reaction, "reshared": post.reshared is not None,
            "size": len(post.raw), "attributes": attributes}


def stored_view(post: Post) -> dict[str, Any]:
    """The view of a stored post that the admin API and the CLI show.

    Takes a verified :class:`Post`; returns :func:`decoded_view` plus
    ``verified: True`` (only verified posts are stored and served). Raises
    :class:`BadInput` only as :func:`decoded_view` does, never for a verified post.
    """
    out = decoded_view(post)
    out["verified"] = True
    return out
