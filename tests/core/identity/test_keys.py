"""app/core/identity/keys.py: the .pub document and the private key file, byte for byte."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.core.base import crypto
from app.core.base.encoding import b64e
from app.core.base.errors import (
    BadInput,
    BadKeyDocument,
    CorruptFile,
    KeyConflict,
    UnusableKey,
    WeakKeyFile,
    WrongPassword,
)
from app.core.identity import keyfile, keys
from app.core.identity.keys import DeviceCert

DATA = Path(__file__).resolve().parents[2] / "data" / "keys"
VECTORS = json.loads((DATA / "vectors.json").read_text())
PUB = (DATA / "example.pub").read_bytes()
PRIVATE = (DATA / "example.private").read_bytes()
SEED = bytes.fromhex(VECTORS["seed"])
TRANSPORT_SECRET = bytes.fromhex(VECTORS["transport_secret"])
DEVICE = VECTORS["device_id"]
MiB = 1024 * 1024
PASSWORD = "correct horse battery staple"


def _line(device: DeviceCert, cert: bytes) -> str:
    return f"device {device.device_id} {device.serial} {b64e(device.transport_public)} {b64e(cert)}"


def _doc(sign: bytes, *lines: str) -> bytes:
    return ("\n".join(["diwan-public-key-v2", f"sign {b64e(sign)}", *lines]) + "\n").encode()


def _transport() -> bytes:
    return crypto.transport_public(crypto.new_transport_secret())


# --- .pub document ------------------------------------------------------------

def test_pub_known_answer_from_fixed_seed_and_transport_secret() -> None:
    device = DeviceCert(DEVICE, VECTORS["serial"], crypto.transport_public(TRANSPORT_SECRET))
    pub = keys.certify(SEED, [device])
    assert pub.to_bytes() == PUB
    assert pub.fingerprint == VECTORS["fingerprint"]
    assert pub.certificates[0].hex() == VECTORS["certificate"]
    assert device.signed_bytes(pub.sign).hex() == VECTORS["certified"]
    assert bytes.fromhex(VECTORS["ctx_device_cert"]) == crypto.CTX_DEVICE_CERT
    assert pub.devices == (device,) and pub.transport_public == device.transport_public


def test_pub_round_trip_is_byte_identical() -> None:
    key = keys.parse_pub(PUB, expected_fp=VECTORS["fingerprint"])
    assert key.sign.hex() == VECTORS["sign_public"]
    assert key.transport_public.hex() == VECTORS["transport_public"]
    assert key.to_bytes() == PUB
    assert keys.parse_pub(PUB.decode("ascii")) == key
    fresh = keys.certify(crypto.new_signing_seed(), _transport())
    assert keys.parse_pub(fresh.to_bytes()) == fresh


def test_several_devices_round_trip_in_order() -> None:
    devices = [DeviceCert(f"{n:016x}", n, _transport()) for n in range(keys.MAX_DEVICES)]
    pub = keys.certify(SEED, devices)
    again = keys.parse_pub(pub.to_bytes())
    assert again == pub and again.devices == tuple(devices)
    assert again.transport_public == devices[0].transport_public
    assert again.device(devices[3].device_id) == devices[3]
    assert len(pub.to_bytes()) <= keys.MAX_PUB_BYTES


def test_too_many_or_repeated_devices_are_refused() -> None:
    devices = [DeviceCert(f"{n:016x}", 1, _transport()) for n in range(keys.MAX_DEVICES + 1)]
    lines = [_line(d, keys.certify_device(SEED, d)) for d in devices]
    sign = crypto.signing_public(SEED)
    with pytest.raises(BadKeyDocument):
        keys.parse_pub(_doc(sign, *lines))
    with pytest.raises(BadKeyDocument, match="twice"):
        keys.parse_pub(_doc(sign, lines[0], lines[0]))
    with pytest.raises(BadKeyDocument):
        keys.parse_pub(_doc(sign))                               # no device at all


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
    PUB.replace(b"diwan-public-key-v2", b"diwan-public-key-v1"),
    PUB.replace(b"diwan-public-key-v2", b"diwan-public-key-v3"),
    PUB + b"x" * 2100,                           # too long
    b"",
    PUB.replace(b"device", b"Device"),
    PUB.replace(f"device {DEVICE} 1 ".encode(), f"device {DEVICE} 01 ".encode()),   # leading 0
    PUB.replace(f"device {DEVICE} 1 ".encode(), f"device {DEVICE} -1 ".encode()),
    PUB.replace(f"device {DEVICE} 1 ".encode(), f"device {DEVICE} 99999999999999999999 ".encode()),
    PUB.replace(DEVICE.encode(), DEVICE.upper().encode()),                # device id pattern
    PUB.replace(DEVICE.encode(), DEVICE[:-1].encode()),
])
def test_malformed_documents_are_rejected(variant: bytes) -> None:
    with pytest.raises(BadKeyDocument) as info:
        keys.parse_pub(variant)
    assert info.value.field == "public_key"


def test_the_old_v1_document_is_refused() -> None:
    sign, transport = crypto.signing_public(SEED), crypto.transport_public(TRANSPORT_SECRET)
    v1 = (f"diwan-public-key-v1\nsign {b64e(sign)}\ntransport {b64e(transport)}\n"
          f"certificate {b64e(bytes(64))}\n").encode()
    with pytest.raises(BadKeyDocument, match="diwan-public-key-v2"):
        keys.parse_pub(v1)


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


def test_certificate_by_another_key_for_another_device_or_context_is_rejected() -> None:
    """Attack 1's document: a signature of the certificate bytes made under any other
    context (a user signature asked for as a 'challenge', none at all) is no certificate."""
    sign = crypto.signing_public(SEED)
    device = DeviceCert(DEVICE, 1, crypto.transport_public(TRANSPORT_SECRET))
    good = keys.certify_device(SEED, device)
    by_other = keys.certify_device(crypto.new_signing_seed(), device)
    as_user = crypto.sign(SEED, crypto.CTX_USER_SIGNATURE,
                          crypto.CTX_DEVICE_CERT + device.signed_bytes(sign))
    as_user_bare = crypto.sign(SEED, crypto.CTX_USER_SIGNATURE, device.signed_bytes(sign))
    as_post = crypto.sign(SEED, crypto.CTX_POST, device.signed_bytes(sign))
    other_key = DeviceCert(DEVICE, 1, _transport())
    other_serial = DeviceCert(DEVICE, 2, device.transport_public)
    other_id = DeviceCert("f" * 16, 1, device.transport_public)
    for dev, cert in ((device, by_other), (device, as_user), (device, as_user_bare),
                      (device, as_post), (other_key, good), (other_serial, good),
                      (other_id, good)):
        with pytest.raises(BadKeyDocument, match="certificate"):
            keys.parse_pub(_doc(sign, _line(dev, cert)))


@pytest.mark.parametrize("transport", [
    bytes(32), bytes([1]) + bytes(31),
    bytes.fromhex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"),
    bytes.fromhex("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
    bytes(31) + b"\x80",
])
def test_an_unusable_transport_key_is_refused_when_parsed(transport: bytes) -> None:
    """Signed by the right key, still refused: small order, non-canonical, high bit."""
    sign = crypto.signing_public(SEED)
    device = DeviceCert(DEVICE, 1, transport)
    cert = crypto.sign(SEED, crypto.CTX_DEVICE_CERT, device.signed_bytes(sign))
    with pytest.raises(BadKeyDocument):
        keys.parse_pub(_doc(sign, _line(device, cert)))
    with pytest.raises(UnusableKey):
        keys.certify(SEED, [device])


def test_non_ascii_text_document_is_rejected_cleanly() -> None:
    with pytest.raises(BadKeyDocument):
        keys.parse_pub(PUB.decode() + "\ud800")
    with pytest.raises(BadKeyDocument):
        keys.parse_pub("diwan-public-key-v2\nsign é\n")


# --- merging certificates (rotation) ----------------------------------------------

A, B = "a" * 16, "b" * 16


def test_merge_adds_devices_and_higher_serials_replace() -> None:
    t1, t2, t3 = _transport(), _transport(), _transport()
    stored = keys.certify(SEED, [DeviceCert(A, 1, t1)])
    assert keys.merge_pub(stored, stored) is stored
    with_b = keys.merge_pub(stored, keys.certify(SEED, [DeviceCert(B, 5, t2)]))
    assert [d.device_id for d in with_b.devices] == [A, B]
    rotated = keys.merge_pub(with_b, keys.certify(SEED, [DeviceCert(A, 2, t3)]))
    assert rotated.devices == (DeviceCert(A, 2, t3), DeviceCert(B, 5, t2))
    assert rotated.transport_public == t3
    assert keys.parse_pub(rotated.to_bytes()) == rotated


@pytest.mark.parametrize("serial,same_key", [(1, False), (0, True), (0, False)])
def test_merge_refuses_a_lower_or_equal_serial_with_other_content(serial: int,
                                                                  same_key: bool) -> None:
    t1 = _transport()
    stored = keys.certify(SEED, [DeviceCert(A, 1, t1)])
    incoming = keys.certify(SEED, [DeviceCert(A, serial, t1 if same_key else _transport())])
    with pytest.raises(KeyConflict):
        keys.merge_pub(stored, incoming)


def test_merge_refuses_another_identity_and_too_many_devices() -> None:
    stored = keys.certify(SEED, [DeviceCert(A, 1, _transport())])
    with pytest.raises(KeyConflict):
        keys.merge_pub(stored, keys.certify(crypto.new_signing_seed(), _transport()))
    many = keys.certify(SEED, [DeviceCert(f"{n:016x}", 1, _transport())
                               for n in range(keys.MAX_DEVICES)])
    with pytest.raises(KeyConflict):
        keys.merge_pub(stored, many)


# --- private key file ------------------------------------------------------------

ENTRY = keys.StoredTransport(1, TRANSPORT_SECRET)
LOW = (crypto.KDF_OPSLIMIT_MIN, crypto.KDF_MEMLIMIT_MIN)   # allowed by the suite's switch


def test_private_known_answer_opens_with_password() -> None:
    private = keys.parse_private(PRIVATE)
    assert private.fingerprint == VECTORS["fingerprint"]
    assert private.device_id == DEVICE
    assert private.transports == (ENTRY,)
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
    private = keys.seal_private_key(SEED, DEVICE, (ENTRY,), PASSWORD, *LOW)
    doc = json.loads(private.to_bytes())
    assert set(doc) == {"format", "fingerprint", "kdf", "sealed_seed", "device", "transport"}
    assert doc["format"] == "diwan-private-key-v2"
    assert doc["kdf"]["alg"] == "argon2id13"
    assert len(private.sealed_seed) == 24 + 16 + 32  # nonce, MAC, seed
    assert SEED not in private.to_bytes() and b64e(SEED).encode() not in private.to_bytes()
    reopened = keys.parse_private(private.to_bytes())
    assert reopened == private and reopened.open_seed(PASSWORD) == SEED
    again = keys.seal_private_key(SEED, DEVICE, (ENTRY,), PASSWORD, *LOW)
    assert again.kdf["salt"] != private.kdf["salt"]        # fresh salt each time
    assert again.sealed_seed != private.sealed_seed


@pytest.mark.parametrize("password", ["", "x", "eleven char"])
def test_a_new_password_needs_twelve_characters(password: str) -> None:
    with pytest.raises(BadInput, match="at least 12 characters") as info:
        keys.seal_private_key(SEED, DEVICE, (ENTRY,), password, *LOW)
    assert info.value.field == "password"
    keys.check_password("twelve chars")   # the edge is accepted


def test_the_default_cost_is_libsodium_moderate_or_stronger(real_kdf: None) -> None:
    from app.core.base import config
    assert keys.kdf_floor() == (3, 256 * MiB)
    assert (config.DEFAULTS["kdf_opslimit"], config.DEFAULTS["kdf_memlimit"]) >= (3, 256 * MiB)
    assert keys.kdf_cost(dict(config.DEFAULTS)) == (3, 256 * MiB)


def test_a_key_file_below_the_floor_is_refused_when_opened(real_kdf: None) -> None:
    """Attack 8: a key file (planted or old) declaring a cheap Argon2id never opens."""
    for ops, mem in ((2, 256 * MiB), (3, 64 * MiB), LOW):
        weak = keys.seal_private_key(SEED, DEVICE, (ENTRY,), PASSWORD, ops, mem)
        with pytest.raises(WeakKeyFile, match="at least 3 and 268435456"):
            keys.parse_private(weak.to_bytes()).open_seed(PASSWORD)


def test_the_insecure_switch_lowers_floor_and_cost() -> None:
    from app.core.base import config
    assert config.insecure_kdf()                       # set for the suite by conftest
    assert keys.kdf_floor() == LOW and keys.kdf_cost(dict(config.DEFAULTS)) == LOW
    assert not config.insecure_kdf({}) and not config.insecure_kdf({"DIWAN_INSECURE_KDF": "0"})
    assert config.insecure_kdf({"DIWAN_INSECURE_KDF": "1"})


@pytest.mark.parametrize("field,value", [("opslimit", crypto.KDF_OPSLIMIT_MAX + 1),
                                         ("memlimit", crypto.KDF_MEMLIMIT_MAX + 1)])
def test_a_key_file_above_the_ceiling_is_refused(field: str, value: int) -> None:
    doc = json.loads(PRIVATE)
    doc["kdf"][field] = value
    with pytest.raises(CorruptFile, match="at most"):
        keys.parse_private(json.dumps(doc).encode()).open_seed(VECTORS["password"])


def test_repr_shows_no_secret() -> None:
    private = keys.parse_private(PRIVATE)
    text = repr(private) + str(private) + repr(private.transports) + repr(ENTRY)
    for secret in (TRANSPORT_SECRET, private.sealed_seed, SEED):
        assert secret.hex() not in text and b64e(secret) not in text and repr(secret) not in text


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


def _variant(**members: object) -> bytes:
    doc = json.loads(PRIVATE)
    doc.update(members)
    return json.dumps(doc).encode()


@pytest.mark.parametrize("data", [
    b"", b"{", b"[]", b"null", b'{"format": "diwan-private-key-v2"}',
    PRIVATE.replace(b"argon2id13", b"scrypt"),
    PRIVATE.replace(b"diwan-private-key-v2", b"diwan-private-key-v1"),
    PRIVATE.replace(b'"secret": "I', b'"secret": "!'),
    _variant(extra=1), _variant(device="ABC"), _variant(fingerprint="../x"),
    _variant(transport=[]),
    _variant(transport=[{"serial": 2, "secret": b64e(TRANSPORT_SECRET), "retired_at": None},
                        {"serial": 1, "secret": b64e(TRANSPORT_SECRET), "retired_at": None}]),
    _variant(transport=[{"serial": -1, "secret": b64e(TRANSPORT_SECRET), "retired_at": None}]),
    _variant(transport=[{"serial": 1, "secret": b64e(TRANSPORT_SECRET), "retired_at": "x"}]),
    PRIVATE + b" " * keyfile.MAX_PRIVATE_BYTES,
])
def test_unreadable_private_files_are_corrupt(data: bytes) -> None:
    with pytest.raises(CorruptFile):
        keys.parse_private(data)


_TRANSPORTS = [crypto.transport_public(bytes([n]) * 32) for n in range(1, 5)]
_DEVICES = ["a" * 16, "b" * 16, "c" * 16]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(_DEVICES), st.integers(0, 5),
                          st.sampled_from(_TRANSPORTS)), min_size=1, max_size=8))
def test_merging_never_goes_back_whatever_arrives(offers: list[tuple[str, int, bytes]]) -> None:
    """Any sequence of genuine certificates: each device ends at the highest serial offered
    first with that serial; nothing offered later at a lower or equal serial with other
    content changes it; merging what is held again changes nothing."""
    held = keys.certify(SEED, [DeviceCert(*offers[0])])
    best = {offers[0][0]: DeviceCert(*offers[0])}
    for offer in offers[1:]:
        device = DeviceCert(*offer)
        incoming = keys.certify(SEED, [device])
        current = best.get(device.device_id)
        if current is None or device.serial > current.serial or device == current:
            held = keys.merge_pub(held, incoming)
            best[device.device_id] = device
        else:
            with pytest.raises(KeyConflict):
                keys.merge_pub(held, incoming)
        assert {d.device_id: d for d in held.devices} == best
    assert keys.merge_pub(held, held) is held
    assert keys.parse_pub(held.to_bytes()) == held
