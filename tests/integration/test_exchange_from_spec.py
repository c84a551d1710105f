"""A v2 feed exchange written from docs/protocol.md alone, against a real node.

Nothing here imports ``app``: Noise IK is implemented below on plain PyNaCl
(X25519, ChaCha20-Poly1305 IETF), ``hashlib`` (BLAKE2b) and ``hmac``, checked
first against the committed Noise test vectors (tests/data/noise/), then
against the sample exchange of the spec (tests/data/exchange/sample.json), and
finally used to ask a real node (tests/integration/harness.py: gunicorn and the
scheduler from the Procfile) for a feed and open the answer.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import time
from pathlib import Path
from typing import Any

import nacl.bindings as sodium
import nacl.signing
import pytest

from .harness import Node

pytestmark = [pytest.mark.integration, pytest.mark.slow]
DATA = Path(__file__).resolve().parents[1] / "data"
NAME = b"Noise_IK_25519_ChaChaPoly_BLAKE2b"
PW = "from-the-spec-password"


# --- Noise (spec rev. 34, sections 4, 5, 7.5, 12) ----------------------------------------

def dh(secret: bytes, public: bytes) -> bytes:
    return sodium.crypto_scalarmult(secret, public)


def pub(secret: bytes) -> bytes:
    return sodium.crypto_scalarmult_base(secret)


def blake(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=64).digest()


def hkdf(ck: bytes, ikm: bytes) -> tuple[bytes, bytes]:
    def mac(key: bytes, data: bytes) -> bytes:
        return hmac.new(key, data, lambda: hashlib.blake2b(digest_size=64)).digest()
    t = mac(ck, ikm)
    o1 = mac(t, b"\x01")
    return o1, mac(t, o1 + b"\x02")


class Cipher:
    def __init__(self, key: bytes | None = None) -> None:
        self.k, self.n = key, 0

    def _nonce(self) -> bytes:
        return b"\x00" * 4 + self.n.to_bytes(8, "little")

    def enc(self, ad: bytes, p: bytes) -> bytes:
        if self.k is None:
            return p
        c = sodium.crypto_aead_chacha20poly1305_ietf_encrypt(p, ad, self._nonce(), self.k)
        self.n += 1
        return c

    def dec(self, ad: bytes, c: bytes) -> bytes:
        if self.k is None:
            return c
        p = sodium.crypto_aead_chacha20poly1305_ietf_decrypt(c, ad, self._nonce(), self.k)
        self.n += 1
        return p


class Sym:
    def __init__(self, prologue: bytes) -> None:
        self.h = NAME.ljust(64, b"\x00")
        self.ck, self.c = self.h, Cipher()
        self.mix_hash(prologue)

    def mix_hash(self, data: bytes) -> None:
        self.h = blake(self.h + data)

    def mix_key(self, ikm: bytes) -> None:
        self.ck, k = hkdf(self.ck, ikm)
        self.c = Cipher(k[:32])

    def enc(self, p: bytes) -> bytes:
        c = self.c.enc(self.h, p)
        self.mix_hash(c)
        return c

    def dec(self, c: bytes) -> bytes:
        p = self.c.dec(self.h, c)
        self.mix_hash(c)
        return p

    def split(self) -> tuple[Cipher, Cipher]:
        a, b = hkdf(self.ck, b"")
        return Cipher(a[:32]), Cipher(b[:32])


class Initiator:
    """IK initiator: ``-> e, es, s, ss`` then ``<- e, ee, se``."""

    def __init__(self, prologue: bytes, s: bytes, rs: bytes, e: bytes) -> None:
        self.sym, self.s, self.rs, self.e = Sym(prologue), s, rs, e
        self.sym.mix_hash(rs)

    def message1(self, payload: bytes) -> bytes:
        e_pub = pub(self.e)
        self.sym.mix_hash(e_pub)
        self.sym.mix_key(dh(self.e, self.rs))
        enc_s = self.sym.enc(pub(self.s))
        self.sym.mix_key(dh(self.s, self.rs))
        return e_pub + enc_s + self.sym.enc(payload)

    def message2(self, msg: bytes) -> bytes:
        re = msg[:32]
        self.sym.mix_hash(re)
        self.sym.mix_key(dh(self.e, re))
        self.sym.mix_key(dh(self.s, re))
        return self.sym.dec(msg[32:])


def test_our_noise_matches_the_committed_vectors() -> None:
    vectors = json.loads((DATA / "noise" / "ik_25519_chachapoly_blake2b.json").read_text())
    for v in vectors["vectors"]:
        ini = Initiator(bytes.fromhex(v["init_prologue"]), bytes.fromhex(v["init_static"]),
                        bytes.fromhex(v["init_remote_static"]),
                        bytes.fromhex(v["init_ephemeral"]))
        m = v["messages"]
        assert ini.message1(bytes.fromhex(m[0]["payload"])).hex() == m[0]["ciphertext"]
        assert ini.message2(bytes.fromhex(m[1]["ciphertext"])).hex() == m[1]["payload"]
        send, recv = ini.sym.split()
        for i, msg in enumerate(m[2:]):
            if i % 2 == 0:
                assert send.enc(b"", bytes.fromhex(msg["payload"])).hex() == msg["ciphertext"]
            else:
                assert recv.dec(b"", bytes.fromhex(msg["ciphertext"])).hex() == msg["payload"]


# --- Diwan (docs/protocol.md: Key documents, The feed exchange) ---------------------------

def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def pub_document(seed: bytes, device: str, serial: int, transport: bytes) -> bytes:
    """A v2 .pub with one device certificate (CTX_DEVICE_CERT ‖ S ‖ ID ‖ SERIAL ‖ T)."""
    key = nacl.signing.SigningKey(seed)
    s = bytes(key.verify_key)
    signed = (b"diwan/v2/device-certificate\x00" + s + device.encode()
              + serial.to_bytes(8, "big") + transport)
    cert = key.sign(signed).signature
    return (f"diwan-public-key-v2\nsign {b64(s)}\n"
            f"device {device} {serial} {b64(transport)} {b64(cert)}\n").encode()


def device_keys(document: bytes) -> list[bytes]:
    return [unb64(line.split()[3]) for line in document.decode().splitlines()
            if line.startswith("device ")]


def prologue(fp: str) -> bytes:
    return b"diwan/v2/feed-exchange\x00POST /feeds/" + fp.encode()


def request_body(ini: Initiator, my_pub: bytes, owner_fp: str, nonce: bytes, now: int,
                 epoch: int | None = None, after: int = 0) -> bytes:
    fields = {"v": 2, "type": "feed-request", "owner": owner_fp, "epoch": epoch,
              "after": after, "summary": False, "limit": 10, "nonce": b64(nonce),
              "time": now, "keys": []}
    js = json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()
    payload = len(my_pub).to_bytes(2, "big") + my_pub + len(js).to_bytes(2, "big") + js
    key_id = ini.rs[:8]  # the first 8 bytes of the owner's transport key asked
    return b"\x02" + key_id + ini.message1(payload.ljust(3076, b"\x00"))


def open_response(ini: Initiator, body: bytes
                  ) -> tuple[bytes, list[bytes], bool, int, list[int]]:
    messages, pos = [], 0
    while pos < len(body):
        n = int.from_bytes(body[pos:pos + 2], "big")
        messages.append(body[pos + 2:pos + 2 + n])
        pos += 2 + n
    owner_pub = ini.message2(messages[0])
    _, recv = ini.sym.split()
    stream = b"".join(recv.dec(b"", m) for m in messages[1:])
    assert stream[:5] == b"\x04\x00\x00\x00\x08"  # the epoch record comes first (no reach)
    epoch, i = int.from_bytes(stream[5:13], "big"), 13
    posts, positions = [], []
    while stream[i] in (1, 2):  # key records (none asked for here), then posts
        n = int.from_bytes(stream[i + 1:i + 5], "big")
        positions.append(int.from_bytes(stream[i + 5:i + 13], "big"))
        posts.append(stream[i + 13:i + 5 + n])
        i += 5 + n
    assert stream[i] == 0 and stream[i + 1] in (0, 1) and not any(stream[i + 2:])
    return owner_pub, posts, stream[i + 1] == 1, epoch, positions


def test_we_make_the_spec_sample_request_byte_for_byte() -> None:
    v: dict[str, Any] = json.loads((DATA / "exchange" / "sample.json").read_text("utf-8"))
    my_pub = pub_document(bytes.fromhex(v["asker_seed"]), "a5a5a5a5a5a5a5a5", 1,
                          pub(bytes.fromhex(v["asker_transport_secret"])))
    assert my_pub.decode() == v["asker_pub"]
    owner_t = device_keys(v["owner_pub"].encode())[0]
    ini = Initiator(prologue(v["owner_fp"]), bytes.fromhex(v["asker_transport_secret"]),
                    owner_t, bytes.fromhex(v["asker_ephemeral_secret"]))
    body = request_body(ini, my_pub, v["owner_fp"], bytes.fromhex(v["nonce"]), v["now"],
                        v["epoch"], v["after"])
    assert body.hex() == v["request"]
    owner_pub, posts, more, epoch, positions = open_response(ini, bytes.fromhex(v["response"]))
    assert owner_pub.decode() == v["owner_pub"]
    assert [p.decode() for p in posts] == v["posts"] and more is v["more"]
    assert (epoch, positions) == (v["epoch"], v["positions"])


def test_a_v2_exchange_with_a_real_node(tmp_path: Path) -> None:
    seed, transport = os.urandom(32), os.urandom(32)
    my_pub = pub_document(seed, "5eed5eed5eed5eed", 1, pub(transport))
    my_fp = hashlib.sha256(bytes(nacl.signing.SigningKey(seed).verify_key)).hexdigest()
    with Node(tmp_path / "owner", "owner", env={"DIWAN_INSECURE_KDF": "1"}) as node:
        fp = node.admin("POST", "/identities", json={"password": PW}).json()["fingerprint"]
        assert node.admin("POST", "/identities",
                          json={"public_key": my_pub.decode()}).status_code in (200, 201)
        texts = ["hello from the spec", "only for you"]
        for text, extra in zip(texts, ({}, {"to": [my_fp]}), strict=True):
            r = node.admin("POST", "/posts", json={"fingerprint": fp, "password": PW,
                                                   "text": text, **extra})
            assert r.status_code == 201, r.text
        owner_pub = node.admin("GET", f"/identities/{fp}").json()["public_key"].encode()
        ini = Initiator(prologue(fp), transport, device_keys(owner_pub)[0], os.urandom(32))
        body = request_body(ini, my_pub, fp, os.urandom(24), int(time.time()))
        r = node.peer("POST", f"/feeds/{fp}", data=body,
                      headers={"Content-Type": "application/octet-stream"})
        assert r.status_code == 200, r.text
        assert len(r.content) == int(r.headers["Content-Length"]) and len(r.content) >= 1024
        assert len(r.content) & (len(r.content) - 1) == 0          # a power of two
        got_pub, posts, more, epoch, positions = open_response(ini, r.content)
        assert got_pub == owner_pub and more is False
        bodies = [json.loads(unb64(p.decode().split(".")[0]))["TEXT"] for p in posts]
        assert bodies == texts   # in the order the node stored them
        assert 1 <= epoch < 2**53 and positions == sorted(positions)
        ini2 = Initiator(prologue(fp), transport, device_keys(owner_pub)[0], os.urandom(32))
        body = request_body(ini2, my_pub, fp, os.urandom(24), int(time.time()), epoch,
                            positions[0])
        r = node.peer("POST", f"/feeds/{fp}", data=body,
                      headers={"Content-Type": "application/octet-stream"})
        assert r.status_code == 200, r.text
        later = open_response(ini2, r.content)
        assert (later[1], later[4]) == (posts[1:], positions[1:])  # after the first one
