"""The invite: one signed line that lets a friend follow an identity (docs/protocol.md, Invites).

An invite string is ``diwan-invite:`` followed by the unpadded base64url of a
compact JSON object (keys sorted, ASCII)::

    {"addresses": ["http://host:8889", ...], "expires": <unix seconds>,
     "fingerprint": "<64 hex>", "pub": "<the .pub document>", "sig": "<base64url, 64 bytes>",
     "token": "<base64url, 16 bytes>" | null, "type": "diwan-invite", "v": 1}

``sig`` is the identity key's Ed25519 signature, under ``CTX_INVITE``, of the
same JSON without ``sig``: no address, expiry or token can be changed, and the
``.pub`` travels whole, so the friend needs no key lookup. Checking follows the
fixed order of the style guide: prefix, size, base64, JSON, members and types,
the ``.pub`` against the fingerprint, the signature, the addresses, the expiry;
each failure is a :class:`BadInvite` saying which.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..base import crypto, names, strictjson
from ..base.encoding import b64d, b64e
from ..base.errors import BadInput, BadInvite
from ..identity import keys
from .contacts import normalise_address

PREFIX = "diwan-invite:"
VERSION = 1
TYPE = "diwan-invite"
TOKEN_BYTES = 16
MAX_ADDRESSES = 8
MAX_INVITE_CHARS = 8192
_MEMBERS = frozenset({"v", "type", "fingerprint", "pub", "addresses", "expires", "token", "sig"})


@dataclass(frozen=True)
class Invite:
    """A verified invite: the inviter's fingerprint and ``.pub`` (bytes), where its nodes
    answer (normalised addresses, best first), when it expires (unix seconds) and its
    one-time token (16 bytes, or None)."""

    fingerprint: str
    pub: bytes
    addresses: tuple[str, ...]
    expires: int
    token: bytes | None

    def to_dict(self) -> dict[str, Any]:
        """``{"fingerprint", "addresses", "expires", "one_time_token"}`` (no secret)."""
        return {"fingerprint": self.fingerprint, "addresses": list(self.addresses),
                "expires": self.expires, "one_time_token": self.token is not None}


def _canonical(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def _unsigned(fp: str, pub: bytes, addresses: Sequence[str], expires: int,
              token: bytes | None) -> dict[str, Any]:
    return {"v": VERSION, "type": TYPE, "fingerprint": fp, "pub": pub.decode("ascii"),
            "addresses": list(addresses), "expires": expires,
            "token": None if token is None else b64e(token)}


def make_invite(seed: bytes, pub: bytes, addresses: Sequence[str], expires: int,
                token: bytes | None = None) -> str:
    """The invite string for the identity of ``seed`` (32 bytes) whose ``.pub`` is ``pub``.

    ``addresses``: 1 to :data:`MAX_ADDRESSES` node addresses (normalised here);
    ``expires``: unix seconds; ``token``: 16 bytes or None. :class:`BadInput` for no or
    bad addresses, a token of another length or a ``.pub`` of another identity.
    """
    fp = crypto.fingerprint(crypto.signing_public(seed))
    keys.parse_pub(pub, expected_fp=fp)
    clean = list(dict.fromkeys(normalise_address(a) for a in addresses))[:MAX_ADDRESSES]
    if not clean:
        raise BadInput("an invite needs at least one address at which this node can be "
                       "reached: set public_url (diwan settings) or bind the peer port to "
                       "a reachable address", field="address")
    if token is not None and len(token) != TOKEN_BYTES:
        raise BadInput(f"a token is {TOKEN_BYTES} bytes", field="token")
    doc = _unsigned(fp, pub, clean, int(expires), token)
    doc["sig"] = b64e(crypto.sign(seed, crypto.CTX_INVITE, _canonical(doc)))
    return PREFIX + b64e(_canonical(doc))


def looks_like_invite(text: str) -> bool:
    """True if ``text`` starts like an invite string (it may still be refused)."""
    return text.strip().startswith(PREFIX)


def _decode(text: str) -> dict[str, Any]:
    text = text.strip()
    if not text.startswith(PREFIX):
        raise BadInvite(f"not an invite: an invite string starts with {PREFIX}")
    if len(text) > MAX_INVITE_CHARS:
        raise BadInvite(f"the invite is longer than {MAX_INVITE_CHARS} characters")
    try:
        doc = strictjson.loads(b64d(text[len(PREFIX):], what="invite"), what="the invite")
    except BadInput as exc:
        raise BadInvite(f"the invite is damaged (cut short or mistyped?): {exc.message}") \
            from None
    if not isinstance(doc, dict) or set(doc) != _MEMBERS:
        raise BadInvite("the invite does not have exactly the members of a version 1 invite")
    if doc["v"] != VERSION or type(doc["v"]) is not int or doc["type"] != TYPE:
        raise BadInvite("not a version 1 Diwan invite")
    return doc


def _typed(doc: dict[str, Any]) -> tuple[str, bytes, list[str], int, bytes | None, bytes]:
    try:
        fp = names.fingerprint(doc["fingerprint"] if isinstance(doc["fingerprint"], str)
                               else "", field="invite")
        if not isinstance(doc["pub"], str) or not doc["pub"].isascii():
            raise BadInput("the .pub member is not ASCII text")
        addresses, expires = doc["addresses"], doc["expires"]
        if not isinstance(addresses, list) or not 1 <= len(addresses) <= MAX_ADDRESSES \
                or not all(isinstance(a, str) for a in addresses):
            raise BadInput(f"addresses must be a list of 1 to {MAX_ADDRESSES} strings")
        if type(expires) is not int or not 0 <= expires < 2**53:
            raise BadInput("expires must be an integer (unix seconds)")
        token = None if doc["token"] is None else b64d(
            doc["token"] if isinstance(doc["token"], str) else "!", length=TOKEN_BYTES,
            what="token")
        sig = b64d(doc["sig"] if isinstance(doc["sig"], str) else "!",
                   length=crypto.SIGNATURE_BYTES, what="signature")
    except BadInput as exc:
        raise BadInvite(f"the invite is malformed: {exc.message}") from None
    return fp, doc["pub"].encode("ascii"), addresses, expires, token, sig


def parse_invite(text: str, *, now: float) -> Invite:
    """Check an invite string in the fixed order and return what it says.

    :class:`BadInvite` (a :class:`BadInput`, HTTP 400, CLI exit 2) naming the first
    failure: not an invite, too long, damaged encoding or JSON, wrong members or
    types, a ``.pub`` that does not verify or is not the fingerprint's, a signature
    that does not verify (anything changed after signing), an address that is not
    ``http(s)://host:port``, or an expiry before ``now`` (unix seconds).
    """
    doc = _decode(text)
    fp, pub, addresses, expires, token, sig = _typed(doc)
    try:
        key = keys.parse_pub(pub, expected_fp=fp)
    except BadInput as exc:
        raise BadInvite(f"the invite's key does not verify for its fingerprint: "
                        f"{exc.message}") from None
    unsigned = {k: v for k, v in doc.items() if k != "sig"}
    if not crypto.verify(key.sign, crypto.CTX_INVITE, _canonical(unsigned), sig):
        raise BadInvite("the invite's signature does not verify: it was changed after "
                        "it was made, or made by someone else")
    try:
        clean = tuple(normalise_address(a) for a in addresses)
    except BadInput as exc:
        raise BadInvite(f"the invite holds a bad address: {exc.message}") from None
    if expires < now:
        raise BadInvite("the invite has expired; ask your friend for a new one")
    return Invite(fp, key.to_bytes(), clean, expires, token)
