"""app/core/keys.py: the .pub document and the private key file, byte for byte."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.core.base import crypto
from app.core.base.encoding import b64e
from app.core.base.errors import BadInput, BadKeyDocument, CorruptFile, WrongPassword
from app.core.identity import keys

DATA = Path(__file__).resolve().parents[2] / "data" / "keys"
VECTORS = json.loads((DATA / "vectors.json").read_text())
PUB = (DATA / "example.pub").read_bytes()
PRIVATE = (DATA / "example.private").read_bytes()
SEED = bytes.fromhex(VECTORS["seed"])
TRANSPORT_SECRET = bytes.fromhex(VECTORS["transport_secret"])
MiB = 1024 * 1024


def _doc(sign: bytes, transport: bytes, cert: bytes) -> bytes:
    return (f"diwan-public-key-v1\nsign {b64e(sign)}\ntransport {b64e(transport)}\n"
            f"certificate {b64e(cert)}\n").encode()


# --- .pub document ------------------------------------------------------------

def test_pub_known_answer_from_fixed_seed_and_transport_secret() -> None:
    pub = keys.certify(SEED, crypto.transport_public(TRANSPORT_SECRET))
    assert pub.to_bytes() == PUB
    assert pub.fingerprint == VECTORS["fingerprint"]
    assert pub.certificate.hex() == VECTORS["certificate"]
    assert len(PUB) == 222


def test_pub_round_trip_is_byte_identical() -> None:
    key = keys.parse_pub(PUB, expected_fp=VECTORS["fingerprint"])
    assert key.sign.hex() == VECTORS["sign_public"]
    assert key.transport.hex() == VECTORS["transport_public"]
    assert key.to_bytes() == PUB
    assert keys.parse_pub(PUB.decode("ascii")) == key
    fresh = keys.certify(crypto.new_signing_seed(), crypto.transport_public(
        crypto.new_transport_secret()))
    assert keys.parse_pub(fresh.to_bytes()) == fresh


@pytest.mark.parametrize("position", range(len(PUB)))
def test_every_flipped_byte_is_rejected(position: int) -> None:
    for flip in (0x01, 0x20, 0x80):
        tampered = bytearray(PUB)
        tampered[position] ^= flip
        with pytest.raises(BadKeyDocument):
            keys.parse_pub(bytes(tampered))


@pytest.mark.parametrize("variant", [
    PUB[:-1],                                   # no final LF
    PUB + b"\n",                                # extra line
    PUB.replace(b"\n", b"\r\n"),                # CRLF
    PUB.replace(b"sign ", b"sign  "),           # extra space
    b" " + PUB,
    PUB.replace(b"diwan-public-key-v1", b"diwan-public-key-v2"),
    PUB + b"x" * 400,                            # too long
    b"",
    PUB.replace(b"\n", b"\n", 1).replace(b"transport", b"Transport"),
])
def test_malformed_documents_are_rejected(variant: bytes) -> None:
    with pytest.raises(BadKeyDocument) as info:
        keys.parse_pub(variant)
    assert info.value.field == "public_key"


def test_non_canonical_base64_is_rejected() -> None:
    lines = PUB.split(b"\n")
    sign_b64 = lines[1].split(b" ")[1]
    # the last of 43 characters carries 4 bits and 2 unused bits that must be zero
    alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    index = alphabet.index(sign_b64[-1:])
    assert index % 4 == 0
    sloppy = alphabet[index | 1:(index | 1) + 1]  # same 32 bytes, an unused bit set
    tampered = PUB.replace(sign_b64, sign_b64[:-1] + sloppy)
    with pytest.raises(BadKeyDocument, match="canonical"):
        keys.parse_pub(tampered)


def test_wrong_expected_fingerprint_is_rejected() -> None:
    wrong = VECTORS["fingerprint"][:-1] + ("0" if VECTORS["fingerprint"][-1] != "0" else "1")
    with pytest.raises(BadKeyDocument, match="fingerprint"):
        keys.parse_pub(PUB, expected_fp=wrong)


def test_certificate_by_another_key_or_for_another_transport_key_is_rejected() -> None:
    sign_public = crypto.signing_public(SEED)
    transport = crypto.transport_public(TRANSPORT_SECRET)
    other_seed = crypto.new_signing_seed()
    forged = crypto.sign_in_context(other_seed, crypto.CTX_TRANSPORT_CERT, sign_public + transport)
    other_transport = crypto.transport_public(crypto.new_transport_secret())
    cert = crypto.sign_in_context(SEED, crypto.CTX_TRANSPORT_CERT, sign_public + transport)
    no_context = crypto.sign(SEED, sign_public + transport)
    for doc in (_doc(sign_public, transport, forged), _doc(sign_public, other_transport, cert),
                _doc(sign_public, transport, no_context)):
        with pytest.raises(BadKeyDocument, match="certificate"):
            keys.parse_pub(doc)


def test_non_ascii_text_document_is_rejected_cleanly() -> None:
    with pytest.raises(BadKeyDocument):
        keys.parse_pub(PUB.decode() + "\ud800")
    with pytest.raises(BadKeyDocument):
        keys.parse_pub("diwan-public-key-v1\nsign é\n")


# --- private key file ------------------------------------------------------------

def test_private_known_answer_opens_with_password() -> None:
    private = keys.parse_private(PRIVATE)
    assert private.fingerprint == VECTORS["fingerprint"]
    assert private.transport_secret == TRANSPORT_SECRET
    assert private.to_bytes() == PRIVATE
    assert private.open_seed(VECTORS["password"]) == SEED


def test_private_wrong_password() -> None:
    with pytest.raises(WrongPassword):
        keys.parse_private(PRIVATE).open_seed("not the password")


def test_private_password_must_be_unicode_text() -> None:
    with pytest.raises(BadInput) as info:
        keys.parse_private(PRIVATE).open_seed("\ud800")
    assert info.value.field == "password"


def test_seal_private_key_stores_parameters_and_salt() -> None:
    private = keys.seal_private_key(SEED, TRANSPORT_SECRET, "pw", 2, 64 * MiB)
    doc = json.loads(private.to_bytes())
    assert set(doc) == {"format", "fingerprint", "kdf", "sealed_seed", "transport_secret"}
    assert doc["format"] == "diwan-private-key-v1"
    assert doc["kdf"]["alg"] == "argon2id13"
    assert doc["kdf"]["opslimit"] >= 2 and doc["kdf"]["memlimit"] >= 64 * MiB
    assert len(private.sealed_seed) == 24 + 16 + 32  # nonce, MAC, seed
    assert SEED not in private.to_bytes() and b64e(SEED).encode() not in private.to_bytes()
    reopened = keys.parse_private(private.to_bytes())
    assert reopened == private and reopened.open_seed("pw") == SEED
    again = keys.seal_private_key(SEED, TRANSPORT_SECRET, "pw", 2, 64 * MiB)
    assert again.kdf["salt"] != private.kdf["salt"]        # fresh salt each time
    assert again.sealed_seed != private.sealed_seed


def test_raised_parameters_are_honoured_when_opening() -> None:
    private = keys.seal_private_key(SEED, TRANSPORT_SECRET, "pw", 3, 80 * MiB)
    doc = json.loads(private.to_bytes())
    assert (doc["kdf"]["opslimit"], doc["kdf"]["memlimit"]) == (3, 80 * MiB)
    assert keys.parse_private(private.to_bytes()).open_seed("pw") == SEED


def test_tampered_sealed_seed_is_refused() -> None:
    doc = json.loads(PRIVATE)
    sealed = bytearray(keys.parse_private(PRIVATE).sealed_seed)
    sealed[30] ^= 1
    doc["sealed_seed"] = b64e(bytes(sealed))
    with pytest.raises(WrongPassword):
        keys.parse_private(json.dumps(doc).encode()).open_seed(VECTORS["password"])


def test_private_file_fingerprint_mismatch_is_corrupt() -> None:
    doc = json.loads(PRIVATE)
    doc["fingerprint"] = "0" * 64
    with pytest.raises(CorruptFile):
        keys.parse_private(json.dumps(doc).encode()).open_seed(VECTORS["password"])


@pytest.mark.parametrize("data", [
    b"", b"{", b"[]", b"null", b'{"format": "diwan-private-key-v1"}',
    PRIVATE.replace(b"argon2id13", b"scrypt"),
    PRIVATE.replace(b"diwan-private-key-v1", b"diwan-private-key-v0"),
    PRIVATE.replace(b'"transport_secret": "I', b'"transport_secret": "!'),
])
def test_unreadable_private_files_are_corrupt(data: bytes) -> None:
    with pytest.raises(CorruptFile):
        keys.parse_private(data)
