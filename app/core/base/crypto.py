"""The one module that touches PyNaCl.

Everything cryptographic in Diwan is a named function here over raw bytes;
callers never see a PyNaCl type or exception. Where Diwan chooses what gets
signed it signs ``context + message`` with a named context constant, so a
signature made for one purpose cannot be replayed for another.
"""

from __future__ import annotations

import hashlib

import nacl.bindings
import nacl.exceptions
import nacl.public
import nacl.pwhash
import nacl.secret
import nacl.signing
import nacl.utils

from .errors import CannotDecrypt, UnusableKey, WrongPassword

SEED_BYTES = 32
PUBLIC_KEY_BYTES = 32
SIGNATURE_BYTES = 64
SALT_BYTES = nacl.pwhash.argon2id.SALTBYTES
KDF_ALG = "argon2id13"

# Named signing contexts (docs/protocol.md, "Signatures"). Every Ed25519 signature made
# with an identity key is over ``context + message`` with one of these. Each is ASCII
# with no NUL inside and ends with one NUL, so none is a prefix of another.
CTX_POST = b"diwan/v2/post\x00"
CTX_DEVICE_CERT = b"diwan/v2/device-certificate\x00"
CTX_USER_SIGNATURE = b"diwan/v2/user-signature\x00"
CONTEXTS: tuple[bytes, ...] = (CTX_POST, CTX_DEVICE_CERT, CTX_USER_SIGNATURE)

# Argon2id cost (docs/protocol.md, "The private key file"). New key files use at least
# libsodium's MODERATE level; a key file declaring less than the floor is refused when
# opened; more than the ceiling too (a file must not make the node allocate without
# bound). The insecure-KDF switch (config.insecure_kdf) lowers floor and cost to
# libsodium's minimum, for test suites only.
KDF_OPSLIMIT_MODERATE = nacl.pwhash.argon2id.OPSLIMIT_MODERATE      # 3 passes
KDF_MEMLIMIT_MODERATE = nacl.pwhash.argon2id.MEMLIMIT_MODERATE      # 256 MiB
KDF_OPSLIMIT_MIN = nacl.pwhash.argon2id.OPSLIMIT_MIN                # 1
KDF_MEMLIMIT_MIN = nacl.pwhash.argon2id.MEMLIMIT_MIN                # 8 KiB
KDF_OPSLIMIT_MAX = 64
KDF_MEMLIMIT_MAX = 4 * 1024 * 1024 * 1024                           # 4 GiB


class _VerifyCache:
    """Small cache of parsed verify keys (constructing one costs a point decode)."""

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self.keys: dict[bytes, nacl.signing.VerifyKey] = {}

    def get(self, public: bytes) -> nacl.signing.VerifyKey:
        key = self.keys.get(public)
        if key is None:
            if len(self.keys) >= self.size:
                self.keys.clear()
            key = self.keys[public] = nacl.signing.VerifyKey(public)
        return key


_verify_keys = _VerifyCache()


def random_bytes(n: int) -> bytes:
    return nacl.utils.random(n)


def fingerprint(sign_public: bytes) -> str:
    """Lowercase hex SHA-256 of the 32 raw Ed25519 public key bytes."""
    return hashlib.sha256(sign_public).hexdigest()


# --- Ed25519 identity keys -------------------------------------------------

def new_signing_seed() -> bytes:
    return bytes(nacl.signing.SigningKey.generate())


def signing_public(seed: bytes) -> bytes:
    return bytes(nacl.signing.SigningKey(seed).verify_key)


def _context(context: bytes) -> bytes:
    if context not in CONTEXTS:  # a programming error, never input: no raw signing oracle
        raise ValueError(f"not a named signing context: {context[:40]!r}")
    return context


def sign(seed: bytes, context: bytes, message: bytes) -> bytes:
    """The detached 64-byte Ed25519 signature of ``context + message``.

    ``context`` MUST be one of :data:`CONTEXTS` (``ValueError`` otherwise): there
    is no way to sign raw bytes with an identity key (protocol.md, "Signatures").
    """
    return nacl.signing.SigningKey(seed).sign(_context(context) + message).signature


def verify(public: bytes, context: bytes, message: bytes, signature: bytes) -> bool:
    """True if ``signature`` is ``public``'s Ed25519 signature of ``context + message``."""
    if len(public) != PUBLIC_KEY_BYTES or len(signature) != SIGNATURE_BYTES:
        return False
    try:
        _verify_keys.get(public).verify(_context(context) + message, signature)
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError,
            nacl.exceptions.TypeError, nacl.exceptions.CryptoError):
        return False
    return True


# --- X25519 transport keys ---------------------------------------------------

def new_transport_secret() -> bytes:
    return bytes(nacl.public.PrivateKey.generate())


def transport_public(secret: bytes) -> bytes:
    return bytes(nacl.public.PrivateKey(secret).public_key)


_P25519 = 2**255 - 19
_PROBE_SCALAR = bytes([9]) + bytes(31)


def check_transport_public(public: bytes) -> None:
    """Raise :class:`UnusableKey` unless ``public`` is a usable X25519 public key.

    Refused: not 32 bytes, the high bit set, a value >= 2^255-19 (non-canonical),
    and every point of small order (all-zero and the others: every shared
    secret with them is predictable; libsodium's scalar multiplication
    refuses them, which is the check made here).
    """
    if len(public) != PUBLIC_KEY_BYTES or public[31] & 0x80 \
            or int.from_bytes(public, "little") >= _P25519:
        raise UnusableKey()
    try:
        nacl.bindings.crypto_scalarmult(_PROBE_SCALAR, public)
    except (nacl.exceptions.CryptoError, nacl.exceptions.RuntimeError,
            nacl.exceptions.ValueError, nacl.exceptions.TypeError) as exc:
        raise UnusableKey() from exc


def box_key(my_secret: bytes, their_public: bytes) -> bytes:
    """The precomputed ``crypto_box`` key of two transport keys (X25519 + HSalsa20).

    :class:`UnusableKey` for a public key of small order (every shared secret
    with it is zero; libsodium refuses it). The key is as secret as ``my_secret``.
    """
    try:
        return bytes(nacl.bindings.crypto_box_beforenm(their_public, my_secret))
    except (nacl.exceptions.CryptoError, nacl.exceptions.ValueError,
            nacl.exceptions.TypeError) as exc:
        raise UnusableKey() from exc


def box_encrypt_with_key(key: bytes, plaintext: bytes) -> bytes:
    """:func:`box_encrypt` with a key from :func:`box_key` (random nonce prepended)."""
    return bytes(nacl.public.Box.decode(key).encrypt(plaintext))


def box_decrypt_with_key(key: bytes, ciphertext: bytes) -> bytes:
    try:
        return bytes(nacl.public.Box.decode(key).decrypt(ciphertext))
    except (nacl.exceptions.CryptoError, nacl.exceptions.ValueError,
            nacl.exceptions.TypeError) as exc:
        raise CannotDecrypt() from exc


def box_encrypt(my_secret: bytes, their_public: bytes, plaintext: bytes) -> bytes:
    """Authenticated encryption from my transport key to theirs (random nonce prepended)."""
    try:
        box = nacl.public.Box(nacl.public.PrivateKey(my_secret),
                              nacl.public.PublicKey(their_public))
    except (nacl.exceptions.CryptoError, nacl.exceptions.ValueError,
            nacl.exceptions.TypeError) as exc:
        raise UnusableKey() from exc
    return bytes(box.encrypt(plaintext))


def box_decrypt(my_secret: bytes, their_public: bytes, ciphertext: bytes) -> bytes:
    try:
        box = nacl.public.Box(nacl.public.PrivateKey(my_secret),
                              nacl.public.PublicKey(their_public))
        return bytes(box.decrypt(ciphertext))
    except (nacl.exceptions.CryptoError, nacl.exceptions.ValueError,
            nacl.exceptions.TypeError) as exc:
        raise CannotDecrypt() from exc


def seal(their_public: bytes, plaintext: bytes) -> bytes:
    """Anonymous encryption to a transport public key (SealedBox)."""
    try:
        box = nacl.public.SealedBox(nacl.public.PublicKey(their_public))
        return bytes(box.encrypt(plaintext))
    except (nacl.exceptions.CryptoError, nacl.exceptions.ValueError,
            nacl.exceptions.TypeError) as exc:
        raise UnusableKey() from exc


def unseal(my_secret: bytes, ciphertext: bytes) -> bytes:
    try:
        return bytes(nacl.public.SealedBox(nacl.public.PrivateKey(my_secret)).decrypt(ciphertext))
    except (nacl.exceptions.CryptoError, nacl.exceptions.ValueError,
            nacl.exceptions.TypeError) as exc:
        raise CannotDecrypt() from exc


# --- Password sealing ------------------------------------------------------------

def new_salt() -> bytes:
    return nacl.utils.random(SALT_BYTES)


def derive_key(password: bytes, salt: bytes, opslimit: int, memlimit: int) -> bytes:
    """A 32-byte key from a password with Argon2id v1.3 (``opslimit`` passes, ``memlimit`` bytes).

    The caller checks the parameters against the floor and ceiling first.
    """
    return nacl.pwhash.argon2id.kdf(nacl.secret.SecretBox.KEY_SIZE, password, salt,
                                    opslimit=opslimit, memlimit=memlimit)


def secret_seal(key: bytes, plaintext: bytes) -> bytes:
    return bytes(nacl.secret.SecretBox(key).encrypt(plaintext))


def secret_open(key: bytes, ciphertext: bytes) -> bytes:
    """Open a SecretBox; a wrong key is reported as a wrong password."""
    try:
        return bytes(nacl.secret.SecretBox(key).decrypt(ciphertext))
    except (nacl.exceptions.CryptoError, nacl.exceptions.ValueError) as exc:
        raise WrongPassword() from exc
