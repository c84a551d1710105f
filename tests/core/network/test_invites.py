"""The invite string (app/core/network/invites.py; docs/protocol.md, Invites): round trip,
and every kind of change refused with a clear error."""

from __future__ import annotations

import json
from typing import Any

import pytest

from app.core.base import crypto
from app.core.base.encoding import b64d, b64e
from app.core.base.errors import BadInput, BadInvite
from app.core.identity import keys
from app.core.network import invites

NOW = 1_800_000_000
SEED = bytes(range(32))
OTHER_SEED = bytes(range(1, 33))
TOKEN = bytes(16)


def _pub(seed: bytes) -> bytes:
    return keys.certify(seed, crypto.transport_public(bytes([9]) * 32)).to_bytes()


def _make(**kw: Any) -> str:
    args: dict[str, Any] = {"addresses": ["http://Laptop.example:8889", "http://10.0.0.2:8889"],
                            "expires": NOW + 3600, "token": TOKEN, **kw}
    return invites.make_invite(SEED, _pub(SEED), args["addresses"], args["expires"],
                               args["token"])


def _doc(text: str) -> dict[str, Any]:
    return json.loads(b64d(text[len(invites.PREFIX):]))  # type: ignore[no-any-return]


def _encode(doc: dict[str, Any]) -> str:
    raw = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
    return invites.PREFIX + b64e(raw)


def test_round_trip() -> None:
    text = _make()
    assert "\n" not in text and text.startswith("diwan-invite:")
    got = invites.parse_invite(text, now=NOW)
    assert got.fingerprint == crypto.fingerprint(crypto.signing_public(SEED))
    assert got.pub == _pub(SEED)
    assert got.addresses == ("http://laptop.example:8889", "http://10.0.0.2:8889")
    assert (got.expires, got.token) == (NOW + 3600, TOKEN)
    assert invites.parse_invite(" " + text + "\n", now=NOW) == got  # pasted with spaces
    assert invites.parse_invite(_make(token=None), now=NOW).token is None


def test_the_signature_is_under_the_invite_context_only() -> None:
    doc = _doc(_make())
    sig = b64d(doc.pop("sig"))
    message = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
    public = crypto.signing_public(SEED)
    assert crypto.verify(public, crypto.CTX_INVITE, message, sig)
    for other in (crypto.CTX_POST, crypto.CTX_USER_SIGNATURE, crypto.CTX_DEVICE_CERT):
        assert not crypto.verify(public, other, message, sig)


CHANGES = {
    "addresses": ["http://attacker.example:8889"],
    "expires": NOW + 10 * 365 * 86400,
    "token": b64e(bytes([1]) * 16),
    "fingerprint": crypto.fingerprint(crypto.signing_public(OTHER_SEED)),
    "pub": _pub(OTHER_SEED).decode(),
    "sig": b64e(bytes(64)),
    "v": 2,
    "type": "diwan-invitation",
}


@pytest.mark.parametrize("member", sorted(CHANGES))
def test_each_member_changed_is_refused(member: str) -> None:
    doc = _doc(_make())
    doc[member] = CHANGES[member]
    with pytest.raises(BadInvite) as info:
        invites.parse_invite(_encode(doc), now=NOW)
    assert info.value.status == 400 and info.value.code == "bad_invite"


def test_a_token_added_or_removed_is_refused() -> None:
    added = _doc(_make(token=None))
    added["token"] = b64e(TOKEN)
    removed = _doc(_make())
    removed["token"] = None
    for doc in (added, removed):
        with pytest.raises(BadInvite, match="signature does not verify"):
            invites.parse_invite(_encode(doc), now=NOW)


def test_the_other_keys_signature_over_its_own_pub_is_refused_for_this_fingerprint() -> None:
    other = _doc(invites.make_invite(OTHER_SEED, _pub(OTHER_SEED), ["http://a:1"], NOW + 60))
    other["fingerprint"] = crypto.fingerprint(crypto.signing_public(SEED))
    with pytest.raises(BadInvite, match="does not verify for its fingerprint"):
        invites.parse_invite(_encode(other), now=NOW)


def test_every_changed_character_is_refused() -> None:
    text = _make()
    body = text[len(invites.PREFIX):]
    for i in range(0, len(body), 3):
        swapped = "A" if body[i] != "A" else "B"
        with pytest.raises(BadInvite):
            invites.parse_invite(invites.PREFIX + body[:i] + swapped + body[i + 1:], now=NOW)


@pytest.mark.parametrize("text, message", [
    ("http://laptop:8889", "not an invite"),
    ("diwan-invite:" + "A" * 9000, "longer than"),
    ("diwan-invite:!!!", "damaged"),
    ("diwan-invite:" + b64e(b"[1]"), "exactly the members"),
])
def test_not_an_invite(text: str, message: str) -> None:
    with pytest.raises(BadInvite, match=message):
        invites.parse_invite(text, now=NOW)


def test_expiry_edge() -> None:
    text = _make(expires=NOW)
    assert invites.parse_invite(text, now=NOW).expires == NOW
    with pytest.raises(BadInvite, match="expired"):
        invites.parse_invite(text, now=NOW + 1)


def test_making_needs_an_address_and_the_identitys_own_pub() -> None:
    with pytest.raises(BadInput, match="at least one address"):
        _make(addresses=[])
    with pytest.raises(BadInput):
        invites.make_invite(SEED, _pub(OTHER_SEED), ["http://a:1"], NOW)
    with pytest.raises(BadInput, match="16 bytes"):
        _make(token=b"short")
