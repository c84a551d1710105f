"""app/core/crypto.py: known answers, round trips, and the one-module-touches-nacl rule."""

from __future__ import annotations

import ast
import hashlib
import json
from pathlib import Path

import nacl.signing
import pytest

from app.core.base import crypto
from app.core.base.errors import CannotDecrypt, UnusableKey, WrongPassword

ROOT = Path(__file__).resolve().parents[3]
VECTORS = json.loads((ROOT / "tests/data/keys/vectors.json").read_text())
MiB = 1024 * 1024

# RFC 8032 section 7.1, TEST 1 (empty message)
RFC8032_SECRET = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
RFC8032_PUBLIC = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
RFC8032_SIG = bytes.fromhex(
    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555"
    "fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b")
# RFC 7748 section 6.1 (Alice)
RFC7748_SECRET = bytes.fromhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
RFC7748_PUBLIC = bytes.fromhex("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")


def test_fingerprint_is_lowercase_hex_sha256_of_raw_key() -> None:
    public = crypto.signing_public(bytes.fromhex(VECTORS["seed"]))
    fp = crypto.fingerprint(public)
    assert fp == hashlib.sha256(public).hexdigest() == VECTORS["fingerprint"]
    assert len(fp) == 64 and fp == fp.lower()


def test_ed25519_rfc8032_known_answer() -> None:
    """The primitive is RFC 8032 Ed25519 (checked with PyNaCl directly: Diwan itself
    signs nothing without a context, so it cannot make the RFC's raw signature)."""
    assert crypto.signing_public(RFC8032_SECRET) == RFC8032_PUBLIC
    assert nacl.signing.SigningKey(RFC8032_SECRET).sign(b"").signature == RFC8032_SIG
    message = b"any message"
    raw = nacl.signing.SigningKey(RFC8032_SECRET).sign(crypto.CTX_POST + message).signature
    assert crypto.sign(RFC8032_SECRET, crypto.CTX_POST, message) == raw
    assert crypto.verify(RFC8032_PUBLIC, crypto.CTX_POST, message, raw)


def test_ed25519_vector_from_key_data() -> None:
    seed = bytes.fromhex(VECTORS["seed"])
    message = bytes.fromhex(VECTORS["message"])
    assert crypto.signing_public(seed).hex() == VECTORS["sign_public"]
    assert bytes.fromhex(VECTORS["ctx_user_signature"]) == crypto.CTX_USER_SIGNATURE
    assert (crypto.sign(seed, crypto.CTX_USER_SIGNATURE, message).hex()
            == VECTORS["message_signature"])


def test_x25519_rfc7748_known_answer() -> None:
    assert crypto.transport_public(RFC7748_SECRET) == RFC7748_PUBLIC


# RFC 8439 section 2.8.2 (the AEAD construction's example)
RFC8439_KEY = bytes(range(0x80, 0xA0))
RFC8439_NONCE = bytes.fromhex("070000004041424344454647")
RFC8439_AAD = bytes.fromhex("50515253c0c1c2c3c4c5c6c7")
RFC8439_PLAINTEXT = (b"Ladies and Gentlemen of the class of '99: If I could offer you only one "
                     b"tip for the future, sunscreen would be it.")
RFC8439_SEALED = bytes.fromhex(
    "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d63dbea45e8ca9671282"
    "fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b3692ddbd7f2d778b8c9803aee328091b58fab3"
    "24e4fad675945585808b4831d7bc3ff4def08e4b7a9de576d26586cec64b6116"
    "1ae10b594f09e26a7e902ecbd0600691")  # ciphertext || tag


def test_aead_rfc8439_known_answer() -> None:
    """libsodium's IETF ChaCha20-Poly1305, called without PyNaCl's Python binding."""
    assert crypto.aead_encrypt(RFC8439_KEY, RFC8439_NONCE, RFC8439_AAD,
                               RFC8439_PLAINTEXT) == RFC8439_SEALED
    assert crypto.aead_decrypt(RFC8439_KEY, RFC8439_NONCE, RFC8439_AAD,
                               RFC8439_SEALED) == RFC8439_PLAINTEXT
    empty = crypto.aead_encrypt(RFC8439_KEY, RFC8439_NONCE, b"", b"")
    assert len(empty) == crypto.AEAD_TAG_BYTES
    assert crypto.aead_decrypt(RFC8439_KEY, RFC8439_NONCE, b"", empty) == b""


@pytest.mark.parametrize("change", ["tag", "ciphertext", "aad", "short"])
def test_aead_refuses_a_changed_or_short_message(change: str) -> None:
    sealed, aad = bytearray(RFC8439_SEALED), RFC8439_AAD
    if change == "tag":
        sealed[-1] ^= 1
    elif change == "ciphertext":
        sealed[0] ^= 1
    elif change == "aad":
        aad = aad[:-1]
    else:
        sealed = sealed[:crypto.AEAD_TAG_BYTES - 1]
    with pytest.raises(CannotDecrypt):
        crypto.aead_decrypt(RFC8439_KEY, RFC8439_NONCE, aad, bytes(sealed))


@pytest.mark.parametrize("key, nonce", [(bytes(31), bytes(12)), (bytes(33), bytes(12)),
                                        (bytes(32), bytes(11)), (bytes(32), bytes(24))])
def test_aead_refuses_a_key_or_nonce_of_another_length(key: bytes, nonce: bytes) -> None:
    """Lengths are checked before libsodium reads them (it takes pointers, not lengths)."""
    with pytest.raises(ValueError):
        crypto.aead_encrypt(key, nonce, b"", b"x")
    with pytest.raises(ValueError):
        crypto.aead_decrypt(key, nonce, b"", bytes(32))


def test_verify_rejects_tampering_without_raising() -> None:
    seed = crypto.new_signing_seed()
    public = crypto.signing_public(seed)
    ctx = crypto.CTX_POST
    sig = crypto.sign(seed, ctx, b"message")
    assert crypto.verify(public, ctx, b"message", sig)
    assert not crypto.verify(public, ctx, b"messagE", sig)
    assert not crypto.verify(public, ctx, b"message", bytes([sig[0] ^ 1]) + sig[1:])
    assert not crypto.verify(crypto.signing_public(crypto.new_signing_seed()), ctx, b"message",
                             sig)
    assert not crypto.verify(public[:31], ctx, b"message", sig)
    assert not crypto.verify(public, ctx, b"message", sig[:63])
    assert not crypto.verify(bytes(32), ctx, b"message", sig)  # small-order point


def test_every_context_is_named_nul_terminated_and_no_prefix_of_another() -> None:
    assert len(set(crypto.CONTEXTS)) == len(crypto.CONTEXTS) >= 3
    for ctx in crypto.CONTEXTS:
        assert ctx.endswith(b"\x00") and b"\x00" not in ctx[:-1]
        assert ctx[:-1].isascii() and ctx.startswith(b"diwan/")
        for other in crypto.CONTEXTS:
            assert other == ctx or not other.startswith(ctx)


def test_a_signature_made_for_one_purpose_verifies_for_no_other() -> None:
    seed = crypto.new_signing_seed()
    public = crypto.signing_public(seed)
    for ctx in crypto.CONTEXTS:
        sig = crypto.sign(seed, ctx, b"data")
        for other in crypto.CONTEXTS:
            assert crypto.verify(public, other, b"data", sig) == (other == ctx)
        # the content cannot smuggle another context in: CTX_A || CTX_B || m is not CTX_B || m
        for other in crypto.CONTEXTS:
            wrapped = crypto.sign(seed, ctx, other + b"data")
            assert other == ctx or not crypto.verify(public, other, b"data", wrapped)


def test_there_is_no_raw_or_unnamed_signing() -> None:
    seed = crypto.new_signing_seed()
    with pytest.raises(ValueError, match="signing context"):
        crypto.sign(seed, b"other-context\x00", b"data")
    with pytest.raises(ValueError, match="signing context"):
        crypto.sign(seed, b"", b"data")
    with pytest.raises(ValueError, match="signing context"):
        crypto.verify(crypto.signing_public(seed), b"", b"data", bytes(64))


@pytest.mark.parametrize("public", [
    bytes(32),                                                  # zero, order 4
    bytes([1]) + bytes(31),                                     # order 1
    bytes.fromhex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"),
    bytes.fromhex("5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157"),
    bytes.fromhex("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),  # p-1
    bytes.fromhex("edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),  # p
    bytes.fromhex("eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),  # p+1
    bytes(31) + b"\x80",                                        # high bit set
    bytes(31),                                                  # too short
])
def test_unusable_transport_keys_are_refused(public: bytes) -> None:
    with pytest.raises(UnusableKey):
        crypto.check_transport_public(public)


def test_a_real_transport_key_is_usable() -> None:
    crypto.check_transport_public(crypto.transport_public(crypto.new_transport_secret()))


def test_box_and_sealed_box_round_trip_and_reject_tampering() -> None:
    a, b = crypto.new_transport_secret(), crypto.new_transport_secret()
    ct = crypto.box_encrypt(a, crypto.transport_public(b), b"secret")
    assert crypto.box_decrypt(b, crypto.transport_public(a), ct) == b"secret"
    with pytest.raises(CannotDecrypt):
        crypto.box_decrypt(b, crypto.transport_public(a), ct[:-1] + bytes([ct[-1] ^ 1]))
    with pytest.raises(CannotDecrypt):
        crypto.box_decrypt(a, crypto.transport_public(a), ct)
    sealed = crypto.seal(crypto.transport_public(b), b"anon")
    assert crypto.unseal(b, sealed) == b"anon"
    with pytest.raises(CannotDecrypt):
        crypto.unseal(a, sealed)
    with pytest.raises(CannotDecrypt):
        crypto.unseal(b, b"short")


def test_argon2id_known_answer_and_salt_dependence() -> None:
    salt = bytes.fromhex(VECTORS["salt"])
    key = crypto.derive_key(VECTORS["password"].encode(), salt, VECTORS["opslimit"],
                            VECTORS["memlimit"])
    assert key.hex() == VECTORS["derived_key"]
    other = crypto.derive_key(VECTORS["password"].encode(), bytes(16), 2, 64 * MiB)
    assert len(other) == 32 and other != key
    assert len(crypto.new_salt()) == crypto.SALT_BYTES == 16
    assert crypto.new_salt() != crypto.new_salt()


def test_secret_box_wrong_key_is_wrong_password() -> None:
    key = crypto.random_bytes(32)
    ct = crypto.secret_seal(key, b"seed" * 8)
    assert crypto.secret_open(key, ct) == b"seed" * 8
    with pytest.raises(WrongPassword):
        crypto.secret_open(crypto.random_bytes(32), ct)
    with pytest.raises(WrongPassword):
        crypto.secret_open(key, ct[:10])


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text("utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def test_only_crypto_module_imports_nacl() -> None:
    offenders = [str(p.relative_to(ROOT)) for base in ("app", "scheduler")
                 for p in (ROOT / base).rglob("*.py")
                 if "nacl" in _imports(p) and p != ROOT / "app/core/base/crypto.py"]
    assert offenders == []


def test_core_never_imports_flask() -> None:
    offenders = [str(p.relative_to(ROOT)) for p in (ROOT / "app/core").rglob("*.py")
                 if _imports(p) & {"flask", "werkzeug", "flask_smorest", "webargs"}]
    assert offenders == []
