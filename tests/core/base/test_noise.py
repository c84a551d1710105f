"""app/core/base/noise.py: Noise_IK_25519_ChaChaPoly_BLAKE2b against the published vectors,
round trips, tampering, wrong and small-order keys, size limits and misuse."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.core.base import crypto, noise
from app.core.base.errors import (
    CannotDecrypt,
    MessageTooLarge,
    NoiseStateError,
    UnusableKey,
)
from app.core.base.noise import (
    CipherState,
    HandshakeState,
    Keypair,
    generate_keypair,
    keypair_from_secret,
)

ROOT = Path(__file__).resolve().parents[3]
VECTORS: list[dict[str, Any]] = json.loads(
    (ROOT / "tests/data/noise/ik_25519_chachapoly_blake2b.json").read_text())["vectors"]
PROLOGUE = b"diwan-test-prologue"
PAYLOAD1 = b"who asks, and from where"
PAYLOAD2 = b"the page"

# Every X25519 public key of small order (libsodium's list), and each with bit 255 set.
_SMALL = ["00" * 32, "01" + "00" * 31,
          "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
          "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
          "ec" + "ff" * 30 + "7f", "ed" + "ff" * 30 + "7f", "ee" + "ff" * 30 + "7f"]
SMALL_ORDER = [bytes.fromhex(p) for p in _SMALL] + [
    bytes.fromhex(p)[:31] + bytes([bytes.fromhex(p)[31] | 0x80]) for p in _SMALL]

ALICE = keypair_from_secret(bytes(range(1, 33)))
BOB = keypair_from_secret(bytes(range(33, 65)))
ALICE_E = keypair_from_secret(bytes(range(65, 97)))
BOB_E = keypair_from_secret(bytes(range(97, 129)))


def _pair(e1: Keypair | None = ALICE_E, e2: Keypair | None = BOB_E,
          responder_static: Keypair = BOB) -> tuple[HandshakeState, HandshakeState]:
    return (HandshakeState.initiator(PROLOGUE, ALICE, BOB.public, e=e1),
            HandshakeState.responder(PROLOGUE, responder_static, e=e2))


def _flips(message: bytes) -> list[bytes]:
    """Every byte of ``message`` with its lowest bit flipped, then with its highest."""
    out = []
    for mask in (0x01, 0x80):
        for i in range(len(message)):
            out.append(message[:i] + bytes([message[i] ^ mask]) + message[i + 1:])
    return out


# --- the published vectors --------------------------------------------------------

@pytest.mark.parametrize("vector", VECTORS, ids=[v["source"] for v in VECTORS])
def test_published_vector_byte_for_byte(vector: dict[str, Any]) -> None:
    x = bytes.fromhex
    assert vector["protocol_name"] == noise.PROTOCOL_NAME.decode()
    init = HandshakeState.initiator(
        x(vector["init_prologue"]), keypair_from_secret(x(vector["init_static"])),
        x(vector["init_remote_static"]), e=keypair_from_secret(x(vector["init_ephemeral"])))
    resp = HandshakeState.responder(
        x(vector["resp_prologue"]), keypair_from_secret(x(vector["resp_static"])),
        e=keypair_from_secret(x(vector["resp_ephemeral"])))
    messages = vector["messages"]
    assert len(messages) >= 4
    m1, m2 = messages[0], messages[1]
    assert init.write_message(x(m1["payload"])).hex() == m1["ciphertext"]
    assert resp.read_message(x(m1["ciphertext"])) == x(m1["payload"])
    assert resp.remote_static == keypair_from_secret(x(vector["init_static"])).public
    assert resp.write_message(x(m2["payload"])).hex() == m2["ciphertext"]
    assert init.read_message(x(m2["ciphertext"])) == x(m2["payload"])
    assert init.complete and resp.complete
    assert init.handshake_hash == resp.handshake_hash
    if "handshake_hash" in vector:
        assert init.handshake_hash.hex() == vector["handshake_hash"]
    i_send, i_recv = init.split()
    r_recv, r_send = resp.split()
    for n, m in enumerate(messages[2:]):
        sender, receiver = (i_send, r_recv) if n % 2 == 0 else (r_send, i_recv)
        ciphertext = sender.encrypt_with_ad(b"", x(m["payload"]))
        assert ciphertext.hex() == m["ciphertext"]
        assert receiver.decrypt_with_ad(b"", ciphertext) == x(m["payload"])


def test_vectors_cover_three_independent_implementations() -> None:
    assert sorted(v["source"] for v in VECTORS) == ["cacophony.txt", "noise-c-basic.txt",
                                                    "snow.txt"]


# --- round trips ----------------------------------------------------------------------

def test_round_trip_with_fresh_keys() -> None:
    alice, bob = generate_keypair(), generate_keypair()
    init = HandshakeState.initiator(PROLOGUE, alice, bob.public)
    resp = HandshakeState.responder(PROLOGUE, bob)
    assert resp.remote_static is None and init.remote_static == bob.public
    m1 = init.write_message(PAYLOAD1)
    assert len(m1) == noise.MESSAGE1_OVERHEAD + len(PAYLOAD1)
    assert resp.read_message(m1) == PAYLOAD1
    assert resp.remote_static == alice.public
    m2 = resp.write_message(PAYLOAD2)
    assert len(m2) == noise.MESSAGE2_OVERHEAD + len(PAYLOAD2)
    assert init.read_message(m2) == PAYLOAD2
    assert init.handshake_hash == resp.handshake_hash and len(init.handshake_hash) == 64
    i_send, i_recv = init.split()
    r_recv, r_send = resp.split()
    for k in range(3):
        up = b"up %d" % k
        assert r_recv.decrypt_with_ad(b"ad", i_send.encrypt_with_ad(b"ad", up)) == up
        assert i_recv.decrypt_with_ad(b"", r_send.encrypt_with_ad(b"", b"down")) == b"down"
    assert i_send.nonce == r_recv.nonce == 3


def test_two_handshakes_with_the_same_keys_share_no_transport_key() -> None:
    first, second = _pair(e1=None, e2=None), _pair(e1=None, e2=None)
    ciphertexts = []
    for init, resp in (first, second):
        resp.read_message(init.write_message(b""))
        init.read_message(resp.write_message(b""))
        ciphertexts.append(init.split()[0].encrypt_with_ad(b"", b"same"))
    assert ciphertexts[0] != ciphertexts[1]


def test_rekey_keeps_both_sides_in_step() -> None:
    init, resp = _pair()
    resp.read_message(init.write_message(b""))
    init.read_message(resp.write_message(b""))
    i_send, r_recv = init.split()[0], resp.split()[0]
    before = i_send.encrypt_with_ad(b"", b"x")
    i_send.rekey()
    r_recv.decrypt_with_ad(b"", before)
    r_recv.rekey()
    assert r_recv.decrypt_with_ad(b"", i_send.encrypt_with_ad(b"", b"y")) == b"y"


# --- tampering and wrong keys ------------------------------------------------------

def test_every_flipped_byte_of_message_1_fails_with_cannot_decrypt() -> None:
    m1 = _pair()[0].write_message(PAYLOAD1)
    assert _pair()[1].read_message(m1) == PAYLOAD1
    for bad in _flips(m1):
        with pytest.raises(CannotDecrypt):
            _pair()[1].read_message(bad)


def test_every_flipped_byte_of_message_2_fails_with_cannot_decrypt() -> None:
    init, resp = _pair()
    resp.read_message(init.write_message(PAYLOAD1))
    m2 = resp.write_message(PAYLOAD2)
    for bad in _flips(m2):
        init = _pair()[0]
        init.write_message(PAYLOAD1)
        with pytest.raises(CannotDecrypt):
            init.read_message(bad)


def test_truncated_or_extended_messages_fail_with_cannot_decrypt() -> None:
    init, resp = _pair()
    m1 = init.write_message(PAYLOAD1)
    resp.read_message(m1)
    m2 = resp.write_message(PAYLOAD2)
    for bad in [m1[:n] for n in range(len(m1))] + [m1 + b"\x00"]:
        with pytest.raises(CannotDecrypt):
            _pair()[1].read_message(bad)
    for bad in [m2[:n] for n in range(len(m2))] + [m2 + b"\x00"]:
        fresh = _pair()[0]
        fresh.write_message(PAYLOAD1)
        with pytest.raises(CannotDecrypt):
            fresh.read_message(bad)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_as_message_1_fail_with_cannot_decrypt_only(message: bytes) -> None:
    with pytest.raises(CannotDecrypt):
        HandshakeState.responder(PROLOGUE, BOB).read_message(message)


def test_wrong_responder_static_fails() -> None:
    m1 = _pair()[0].write_message(PAYLOAD1)
    with pytest.raises(CannotDecrypt):
        _pair(responder_static=generate_keypair())[1].read_message(m1)


def test_wrong_prologue_fails() -> None:
    m1 = _pair()[0].write_message(PAYLOAD1)
    with pytest.raises(CannotDecrypt):
        HandshakeState.responder(PROLOGUE + b"!", BOB).read_message(m1)


def test_message_2_from_another_responder_key_fails() -> None:
    """The initiator pinned BOB: a responder holding another key cannot answer it."""
    carol = generate_keypair()
    init = HandshakeState.initiator(PROLOGUE, ALICE, carol.public)
    m1 = init.write_message(PAYLOAD1)
    impostor = HandshakeState.responder(PROLOGUE, carol)
    impostor.read_message(m1)
    init_to_bob = HandshakeState.initiator(PROLOGUE, ALICE, BOB.public)
    init_to_bob.write_message(PAYLOAD1)
    with pytest.raises(CannotDecrypt):
        init_to_bob.read_message(impostor.write_message(PAYLOAD2))


def test_decoy_responder_does_the_same_work_as_the_right_one(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Message 1 costs the same X25519 and AEAD calls whether it opens, is for another key,
    is garbled, too short or carries a small-order key."""
    calls: list[str] = []
    for name in ("x25519", "aead_decrypt", "hmac_blake2b", "blake2b_512"):
        real = getattr(crypto, name)

        def counting(*args: bytes, _real: Any = real, _name: str = name) -> bytes:
            calls.append(_name)
            return bytes(_real(*args))
        monkeypatch.setattr(crypto, name, counting)
    m1 = _pair()[0].write_message(PAYLOAD1)
    cases = {"right key": (BOB, m1), "decoy key": (generate_keypair(), m1),
             "garbled": (BOB, m1[:40] + bytes([m1[40] ^ 1]) + m1[41:]),
             "short": (BOB, m1[:10]), "small-order e": (BOB, bytes(32) + m1[32:])}
    counts = {}
    for label, (static, message) in cases.items():
        calls.clear()
        try:
            HandshakeState.responder(PROLOGUE, static).read_message(message)
        except CannotDecrypt:
            assert label != "right key"
        counts[label] = sorted(calls)
    assert all(c == counts["right key"] for c in counts.values()), counts
    assert counts["right key"].count("x25519") >= 2


# --- small-order and malformed keys -------------------------------------------------

@pytest.mark.parametrize("point", SMALL_ORDER,
                         ids=[p.hex()[:8] + p.hex()[-2:] for p in SMALL_ORDER])
def test_small_order_points_are_refused_everywhere(point: bytes) -> None:
    with pytest.raises(UnusableKey):
        crypto.x25519(ALICE.secret, point)
    with pytest.raises(UnusableKey):
        crypto.check_x25519_public(point)
    # as the responder static an initiator was given
    with pytest.raises(UnusableKey):
        HandshakeState.initiator(PROLOGUE, ALICE, point)
    # as the initiator's ephemeral key in message 1
    m1 = _pair()[0].write_message(PAYLOAD1)
    with pytest.raises(CannotDecrypt):
        _pair()[1].read_message(point + m1[32:])
    # as the initiator's static key, encrypted inside a well-formed message 1
    forged = HandshakeState.initiator(PROLOGUE, Keypair(ALICE.secret, point), BOB.public)
    with pytest.raises(CannotDecrypt):
        _pair()[1].read_message(forged.write_message(PAYLOAD1))
    # as the responder's ephemeral key in message 2
    init = _pair()[0]
    init.write_message(PAYLOAD1)
    with pytest.raises(CannotDecrypt):
        init.read_message(point + bytes(16))


def test_check_x25519_public_accepts_ordinary_keys() -> None:
    for key in [generate_keypair().public for _ in range(50)] + [ALICE.public, BOB.public]:
        crypto.check_x25519_public(key)
        crypto.x25519(ALICE.secret, key)


@pytest.mark.parametrize("length", [0, 31, 33])
def test_keys_of_the_wrong_length_are_refused(length: int) -> None:
    with pytest.raises(UnusableKey):
        HandshakeState.initiator(PROLOGUE, ALICE, bytes(length))
    with pytest.raises(UnusableKey):
        keypair_from_secret(bytes(length))
    with pytest.raises(UnusableKey):
        crypto.check_x25519_public(bytes(length))
    with pytest.raises(UnusableKey):
        HandshakeState.responder(PROLOGUE, Keypair(bytes(length), BOB.public))


# --- sizes and nonces ---------------------------------------------------------------

def test_handshake_messages_at_the_size_limit() -> None:
    biggest1 = b"a" * (noise.MAX_MESSAGE_BYTES - noise.MESSAGE1_OVERHEAD)
    biggest2 = b"b" * (noise.MAX_MESSAGE_BYTES - noise.MESSAGE2_OVERHEAD)
    init, resp = _pair()
    with pytest.raises(MessageTooLarge):
        init.write_message(biggest1 + b"a")
    m1 = init.write_message(biggest1)
    assert len(m1) == 65535
    assert resp.read_message(m1) == biggest1
    with pytest.raises(MessageTooLarge):
        resp.write_message(biggest2 + b"b")
    assert init.read_message(resp.write_message(biggest2)) == biggest2
    with pytest.raises(CannotDecrypt):
        _pair()[1].read_message(m1 + b"a")


def test_transport_messages_at_the_size_limit() -> None:
    send, receive = CipherState(bytes(32)), CipherState(bytes(32))
    biggest = bytes(noise.MAX_MESSAGE_BYTES - noise.TAGLEN)
    with pytest.raises(MessageTooLarge):
        send.encrypt_with_ad(b"", biggest + b"\x00")
    assert send.nonce == 0
    ciphertext = send.encrypt_with_ad(b"", biggest)
    assert len(ciphertext) == 65535
    assert receive.decrypt_with_ad(b"", ciphertext) == biggest
    with pytest.raises(CannotDecrypt):
        CipherState(bytes(32)).decrypt_with_ad(b"", ciphertext + b"\x00")


def test_failed_transport_decryption_keeps_the_nonce() -> None:
    send, receive = CipherState(bytes(32)), CipherState(bytes(32))
    good = send.encrypt_with_ad(b"ad", b"hello")
    for bad in _flips(good) + [good[:15], b"", good[:-1]]:
        with pytest.raises(CannotDecrypt):
            receive.decrypt_with_ad(b"ad", bad)
    with pytest.raises(CannotDecrypt):
        receive.decrypt_with_ad(b"other ad", good)
    assert receive.nonce == 0
    assert receive.decrypt_with_ad(b"ad", good) == b"hello"
    with pytest.raises(CannotDecrypt):
        receive.decrypt_with_ad(b"ad", good)  # a replay is the wrong nonce now


def test_nonce_exhaustion() -> None:
    send, receive = CipherState(bytes(32)), CipherState(bytes(32))
    send.set_nonce(noise.MAX_NONCE - 1)
    receive.set_nonce(noise.MAX_NONCE - 1)
    assert receive.decrypt_with_ad(b"", send.encrypt_with_ad(b"", b"last")) == b"last"
    with pytest.raises(NoiseStateError):
        send.encrypt_with_ad(b"", b"one too many")
    with pytest.raises(NoiseStateError):
        receive.decrypt_with_ad(b"", bytes(16))
    with pytest.raises(NoiseStateError):
        send.set_nonce(2**64)


# --- misuse ------------------------------------------------------------------------

def test_out_of_order_and_reuse_after_failure_are_refused() -> None:
    init, resp = _pair()
    with pytest.raises(NoiseStateError):
        init.split()
    with pytest.raises(NoiseStateError):
        init.read_message(bytes(48))
    with pytest.raises(NoiseStateError):
        resp.write_message(b"")
    m1 = init.write_message(b"")
    with pytest.raises(NoiseStateError):
        init.write_message(b"")
    with pytest.raises(CannotDecrypt):
        resp.read_message(m1[:-1])
    assert not resp.complete
    with pytest.raises(NoiseStateError):
        resp.read_message(m1)  # a failed handshake stays failed
    with pytest.raises(NoiseStateError):
        resp.split()


def test_split_gives_one_pair_only() -> None:
    init, resp = _pair()
    resp.read_message(init.write_message(b""))
    init.read_message(resp.write_message(b""))
    init.split()
    with pytest.raises(NoiseStateError):
        init.split()  # a second pair would start at nonce 0 again


def test_repr_shows_no_secret() -> None:
    init, resp = _pair()
    resp.read_message(init.write_message(b""))
    init.read_message(resp.write_message(b""))
    send, _ = init.split()
    text = " ".join(repr(o) for o in (ALICE, init, resp, send, init._symmetric))
    for secret in (ALICE.secret, ALICE_E.secret, BOB.secret, BOB_E.secret):
        assert secret.hex() not in text
    assert ALICE.public.hex() in repr(ALICE)
