"""Attack 1 (issue 8): the signing endpoint as an oracle, against real gunicorn processes.

The attacker gets the victim to "sign this challenge" through the victim node's
admin API (``POST /identities/<fp>/sign``), choosing the bytes: a transport key
certificate for the victim's key and the attacker's X25519 key (every format
Diwan ever had), or a P1. It then builds a ``.pub`` document or a post from the
signature and offers them to another node (its key-server peer port, its admin
import) and to the victim's own node. Every one of them must be refused: a
user signature is made under its own context and verifies as nothing else.

Everything here is built from the text of docs/protocol.md with plain PyNaCl.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from typing import Any

import nacl.public
import nacl.signing
import pytest

from .conftest import NodeFactory
from .harness import Node, start_all

pytestmark = pytest.mark.integration

PASSWORD = "the victim's password"
CTX_V1_CERT = b"diwan/v1/transport-key-certificate\x00"   # the first format's context
CTX_DEVICE_CERT = b"diwan/v2/device-certificate\x00"
CTX_POST = b"diwan/v2/post\x00"
CTX_USER_SIGNATURE = b"diwan/v2/user-signature\x00"


def b64e(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def oracle(victim: Node, fp: str, content: bytes) -> bytes:
    """What the victim's node signs when asked to sign ``content`` (a 'challenge')."""
    r = victim.admin("POST", f"/identities/{fp}/sign",
                     json={"password": PASSWORD, "content": b64e(content),
                           "encoding": "base64url"})
    assert r.status_code == 200, r.text
    return b64d(r.json()["signature"])


def forged_pubs(victim: Node, fp: str, genuine: str, attacker_x25519: bytes) -> list[str]:
    """.pub documents for the victim's fingerprint certifying the attacker's key."""
    sign = b64d(genuine.split("\n")[1].split(" ")[1])
    assert hashlib.sha256(sign).hexdigest() == fp
    out = []
    # the first format: four lines, certificate over CTX_V1 || S || T
    for content in (CTX_V1_CERT + sign + attacker_x25519, sign + attacker_x25519):
        cert = oracle(victim, fp, content)
        out.append(f"diwan-public-key-v1\nsign {b64e(sign)}\ntransport {b64e(attacker_x25519)}\n"
                   f"certificate {b64e(cert)}\n")
    # the current format: a "rotation" of the victim's own device to the attacker's key
    device_line = next((line for line in genuine.split("\n") if line.startswith("device ")), None)
    device, serial = (device_line.split(" ")[1], int(device_line.split(" ")[2]) + 1) \
        if device_line else ("0123456789abcdef", 2)
    certified = sign + device.encode() + serial.to_bytes(8, "big") + attacker_x25519
    for content in (CTX_DEVICE_CERT + certified, certified):
        cert = oracle(victim, fp, content)
        out.append(f"diwan-public-key-v2\nsign {b64e(sign)}\n"
                   f"device {device} {serial} {b64e(attacker_x25519)} {b64e(cert)}\n")
    return out


def forged_posts(victim: Node, fp: str) -> list[str]:
    """Posts 'by the victim' made from signatures of P1s it was asked to sign."""
    attrs = {"CREATED_TIME": int(time.time()) - 60, "TEXT": "I hereby give my account away"}
    p1 = b64e(json.dumps(attrs, separators=(",", ":"), sort_keys=True).encode())
    return [f"{p1}.{fp}.{b64e(oracle(victim, fp, content))}"
            for content in (p1.encode(), CTX_POST + p1.encode())]


def _refused(r: Any) -> None:
    assert 400 <= r.status_code < 500, (r.status_code, r.text)
    assert r.headers["Content-Type"].startswith("application/json")


def test_signatures_from_the_sign_endpoint_forge_neither_keys_nor_posts(
        make_node: NodeFactory) -> None:
    victim, other = start_all([make_node("victim", start=False),
                               make_node("other", start=False, settings={"key_server": True,
                                                                 "key_server_rate": 100})])
    r = victim.admin("POST", "/identities", json={"password": PASSWORD})
    assert r.status_code == 201, r.text
    fp = r.json()["fingerprint"]
    genuine = victim.peer("GET", f"/identities/{fp}").text
    attacker_x25519 = bytes(nacl.public.PrivateKey.generate().public_key)
    pubs = forged_pubs(victim, fp, genuine, attacker_x25519)
    posts = forged_posts(victim, fp)

    # another node that has never seen the victim: its key-server peer port, its admin import
    for doc in pubs:
        _refused(other.session.post(f"{other.peer_url}/identities", data=doc.encode(),
                                    headers={"Content-Type": "text/plain"}, timeout=10))
        _refused(other.admin("POST", "/identities", json={"public_key": doc}))
    assert other.admin("GET", f"/identities/{fp}").status_code == 404

    # once it holds the genuine key, a forged "rotation" does not replace it
    ok = other.session.post(f"{other.peer_url}/identities", data=genuine.encode(),
                            headers={"Content-Type": "text/plain"}, timeout=10)
    assert ok.status_code == 201, ok.text
    for doc in pubs:
        _refused(other.session.post(f"{other.peer_url}/identities", data=doc.encode(),
                                    headers={"Content-Type": "text/plain"}, timeout=10))
        _refused(other.admin("POST", "/identities", json={"public_key": doc}))
    assert other.peer("GET", f"/identities/{fp}").text == genuine
    # ... nor the copy its owner imported (as when following the victim)
    assert other.admin("POST", "/identities", json={"public_key": genuine}).status_code == 201
    for doc in pubs:
        _refused(other.admin("POST", "/identities", json={"public_key": doc}))
    assert (other.root / "identities" / f"{fp}.pub").read_text() == genuine

    # the forged posts: refused by the node that holds the key, and by the victim's own node
    for post in posts:
        _refused(other.admin("POST", "/posts/import", json={"post": post}))
        _refused(victim.admin("POST", "/posts/import", json={"post": post}))
    assert not (other.root / "posts" / fp).exists() or not any(
        (other.root / "posts" / fp).iterdir())

    # what the endpoint gives is a user signature: it says so, and verifies as exactly that
    r = victim.admin("POST", f"/identities/{fp}/sign",
                     json={"password": PASSWORD, "content": "a real challenge"})
    assert r.json()["context"] == "diwan/v2/user-signature"
    sign = b64d(genuine.split("\n")[1].split(" ")[1])
    nacl.signing.VerifyKey(sign).verify(CTX_USER_SIGNATURE + b"a real challenge",
                                        b64d(r.json()["signature"]))

    # the suite's insecure-KDF switch reached the real processes, and each said so loudly;
    # the password is in no log
    for name in ("admin", "peer", "scheduler"):
        log = victim.log(name)
        assert "INSECURE KEY DERIVATION: DIWAN_INSECURE_KDF" in log, (name, log[-2000:])
        assert PASSWORD not in log
