"""The one module that touches PyNaCl.

Everything cryptographic in Diwan is a named function here over raw bytes;
callers never see a PyNaCl type or exception. Where Diwan chooses what gets
signed it signs ``context + message`` with a named context constant, so a
signature made for one purpose cannot be replayed for another.
"""

from __future__ import annotations

import hashlib
import hmac

import nacl.bindings
import nacl.exceptions
import nacl.public
import nacl.pwhash
import nacl.secret
import nacl.signing
import nacl.utils
from nacl._sodium import ffi as _ffi
from nacl._sodium import lib as _lib

from .errors import CannotDecrypt, UnusableKey, WrongPassword

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
CTX_INVITE = b"diwan/v2/invite\x00"
CONTEXTS: tuple[bytes, ...] = (CTX_POST, CTX_DEVICE_CERT, CTX_USER_SIGNATURE, CTX_INVITE)

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
    """``n`` bytes from the operating system's CSPRNG (libsodium ``randombytes``)."""
    return nacl.utils.random(n)


def fingerprint(sign_public: bytes) -> str:
    """The fingerprint of an identity: 64 lowercase hex characters, the SHA-256 of the 32 raw
    Ed25519 public key bytes (``docs/protocol.md``, Key documents: Fingerprint)."""
    return hashlib.sha256(sign_public).hexdigest()


# --- Ed25519 identity keys -------------------------------------------------

def new_signing_seed() -> bytes:
    """A fresh random 32-byte Ed25519 seed (the private half of an identity key, RFC 8032)."""
    return bytes(nacl.signing.SigningKey.generate())


def signing_public(seed: bytes) -> bytes:
    """The 32-byte Ed25519 public key of a 32-byte ``seed``.

    A seed of another length raises ``ValueError`` (a programming error, not input).
    """
    return bytes(nacl.signing.SigningKey(seed).verify_key)


def _context(context: bytes) -> bytes:
    if context not in CONTEXTS:  # a programming error, never input: no raw signing oracle
        raise ValueError(f"not a named signing context: {context[:40]!r}")
    return context


def sign(seed: bytes, context: bytes, message: bytes) -> bytes:
    """The detached 64-byte Ed25519 signature (RFC 8032, pure) of ``context + message``.

    ``context`` MUST be one of :data:`CONTEXTS` (``ValueError`` otherwise): there is
    no way to sign raw bytes with an identity key (``docs/protocol.md``, Key documents:
    Signatures). A seed that is not 32 bytes raises ``ValueError`` (a programming error).
    """
    return nacl.signing.SigningKey(seed).sign(_context(context) + message).signature


def verify(public: bytes, context: bytes, message: bytes, signature: bytes) -> bool:
    """True if ``signature`` (64 bytes) is ``public``'s (32 bytes) Ed25519 signature of
    ``context + message``; False for any other signature or key, of any length.
    ``ValueError`` only for a ``context`` not in :data:`CONTEXTS` (a programming error)."""
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
    """A fresh random 32-byte X25519 secret key (a transport key, RFC 7748)."""
    return bytes(nacl.public.PrivateKey.generate())


def transport_public(secret: bytes) -> bytes:
    """The 32-byte X25519 public key of a 32-byte transport ``secret``.

    A secret of another length raises ``TypeError`` (a programming error, not input).
    """
    return bytes(nacl.public.PrivateKey(secret).public_key)


_P25519 = 2**255 - 19


def check_transport_public(public: bytes) -> None:
    """Raise :class:`UnusableKey` unless ``public`` is a usable X25519 transport public key.

    Refused: not 32 bytes, a point of small order (all-zero and the others, see
    :func:`check_x25519_public`), the high bit set, or a value >= 2^255-19 (not
    canonical) (``docs/protocol.md``, Key documents: The public key document, rule 6).
    """
    check_x25519_public(public)
    if public[31] & 0x80 or int.from_bytes(public, "little") >= _P25519:
        raise UnusableKey()


def box_key(my_secret: bytes, their_public: bytes) -> bytes:
    """The 32-byte precomputed ``crypto_box`` key of two transport keys (X25519 + HSalsa20).

    Raises :class:`UnusableKey` for a public key of small order (every shared secret with it
    is zero; libsodium refuses it) or of the wrong length (``docs/protocol.md``, Peer API:
    Primitives). The key is as secret as ``my_secret``.
    """
    try:
        return bytes(nacl.bindings.crypto_box_beforenm(their_public, my_secret))
    except (nacl.exceptions.CryptoError, nacl.exceptions.ValueError,
            nacl.exceptions.TypeError) as exc:
        raise UnusableKey() from exc


def box_encrypt_with_key(key: bytes, plaintext: bytes) -> bytes:
    """:func:`box_encrypt` with a key from :func:`box_key`: ``nonce (24) || tag (16) ||
    ciphertext``, 40 bytes longer than ``plaintext`` (``docs/protocol.md``, Primitives)."""
    return bytes(nacl.public.Box.decode(key).encrypt(plaintext))


def box_decrypt_with_key(key: bytes, ciphertext: bytes) -> bytes:
    """Open a :func:`box_encrypt_with_key` ciphertext with a key from :func:`box_key`.

    Raises :class:`CannotDecrypt` if it is damaged, too short or made for another key.
    """
    try:
        return bytes(nacl.public.Box.decode(key).decrypt(ciphertext))
    except (nacl.exceptions.CryptoError, nacl.exceptions.ValueError,
            nacl.exceptions.TypeError) as exc:
        raise CannotDecrypt() from exc


def box_encrypt(my_secret: bytes, their_public: bytes, plaintext: bytes) -> bytes:
    """Authenticated encryption (``crypto_box``) from my transport secret to their public key.

    Returns ``nonce (24) || tag (16) || ciphertext``, 40 bytes longer than ``plaintext``
    (``docs/protocol.md``, Peer API: Primitives, ``Box``). Raises :class:`UnusableKey` if
    either key is not 32 bytes or theirs is of small order.
    """
    try:
        box = nacl.public.Box(nacl.public.PrivateKey(my_secret),
                              nacl.public.PublicKey(their_public))
    except (nacl.exceptions.CryptoError, nacl.exceptions.ValueError,
            nacl.exceptions.TypeError) as exc:
        raise UnusableKey() from exc
    return bytes(box.encrypt(plaintext))


def box_decrypt(my_secret: bytes, their_public: bytes, ciphertext: bytes) -> bytes:
    """Open a :func:`box_encrypt` ciphertext sent by ``their_public`` to ``my_secret``.

    Raises :class:`CannotDecrypt` if it is damaged, too short, from another key, or if a key
    is unusable.
    """
    try:
        box = nacl.public.Box(nacl.public.PrivateKey(my_secret),
                              nacl.public.PublicKey(their_public))
        return bytes(box.decrypt(ciphertext))
    except (nacl.exceptions.CryptoError, nacl.exceptions.ValueError,
            nacl.exceptions.TypeError) as exc:
        raise CannotDecrypt() from exc


def seal(their_public: bytes, plaintext: bytes) -> bytes:
    """Anonymous encryption (``crypto_box_seal``) to a 32-byte transport public key.

    Returns ``ephemeral public (32) || tag (16) || ciphertext``, 48 bytes longer than
    ``plaintext`` (``docs/protocol.md``, Peer API: Primitives, ``SealedBox``). Raises
    :class:`UnusableKey` if the key is not 32 bytes.
    """
    try:
        box = nacl.public.SealedBox(nacl.public.PublicKey(their_public))
        return bytes(box.encrypt(plaintext))
    except (nacl.exceptions.CryptoError, nacl.exceptions.ValueError,
            nacl.exceptions.TypeError) as exc:
        raise UnusableKey() from exc


def unseal(my_secret: bytes, ciphertext: bytes) -> bytes:
    """Open a :func:`seal` ciphertext with the 32-byte transport secret it was sealed to.

    Raises :class:`CannotDecrypt` if it is damaged, too short or sealed to another key.
    """
    try:
        return bytes(nacl.public.SealedBox(nacl.public.PrivateKey(my_secret)).decrypt(ciphertext))
    except (nacl.exceptions.CryptoError, nacl.exceptions.ValueError,
            nacl.exceptions.TypeError) as exc:
        raise CannotDecrypt() from exc


# --- Noise primitives (docs/protocol.md, "Noise primitives") ----------------

AEAD_KEY_BYTES = 32
AEAD_NONCE_BYTES = 12
AEAD_TAG_BYTES = 16
BLAKE2B_BYTES = 64
BLAKE2B_BLOCK_BYTES = 128

_NACL_ERRORS = (nacl.exceptions.CryptoError, nacl.exceptions.ValueError,
                nacl.exceptions.TypeError)


def x25519(secret: bytes, public: bytes) -> bytes:
    """The 32-byte X25519 shared secret of ``secret`` and ``public`` (RFC 7748).

    Both arguments are 32 bytes. :class:`UnusableKey` for another length or for
    a public key of small order (the shared secret would be all zero; libsodium
    refuses it). Noise spec rev. 34, section 12.1 (``DH``).
    """
    if len(secret) != 32 or len(public) != PUBLIC_KEY_BYTES:
        raise UnusableKey()
    try:
        return bytes(nacl.bindings.crypto_scalarmult(secret, public))
    except _NACL_ERRORS as exc:
        raise UnusableKey() from exc


# The X25519 public keys of small order, with bit 255 ignored (libsodium's list in
# ``crypto_scalarmult/curve25519/ref10/x25519_ref10.c``): 0, 1, the two points of order 8,
# p-1 (order 2), and the non-canonical p and p+1.
_SMALL_ORDER = tuple(bytes.fromhex(h) for h in (
    "00" * 32, "01" + "00" * 31,
    "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
    "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
    "ec" + "ff" * 30 + "7f", "ed" + "ff" * 30 + "7f", "ee" + "ff" * 30 + "7f"))


def check_x25519_public(public: bytes) -> None:
    """Refuse a public key that no X25519 exchange can use, without a scalar multiplication.

    :class:`UnusableKey` unless ``public`` is 32 bytes and not of small order
    (every shared secret with a small-order key is all zero, Noise rev. 34 section 9.3).
    """
    if len(public) != PUBLIC_KEY_BYTES:
        raise UnusableKey()
    masked = public[:31] + bytes([public[31] & 0x7F])
    if any(hmac.compare_digest(masked, bad) for bad in _SMALL_ORDER):
        raise UnusableKey()


def x25519_public(secret: bytes) -> bytes:
    """The 32-byte X25519 public key of a 32-byte secret (``X25519(secret, 9)``).

    :class:`UnusableKey` for a secret of another length.
    """
    if len(secret) != 32:
        raise UnusableKey()
    return bytes(nacl.bindings.crypto_scalarmult_base(secret))


def aead_encrypt(key: bytes, nonce: bytes, ad: bytes, plaintext: bytes) -> bytes:
    """IETF ChaCha20-Poly1305 (RFC 8439): ``ciphertext || 16-byte tag``.

    ``key`` is 32 bytes, ``nonce`` 12 bytes (``ValueError`` otherwise). Noise spec rev. 34,
    section 12.3. libsodium's function through PyNaCl's own cffi handle (its Python
    binding's argument checks cost 2.5 µs a call, most of a short message's cost; the
    lengths are checked here instead).
    """
    if len(key) != AEAD_KEY_BYTES or len(nonce) != AEAD_NONCE_BYTES:
        raise ValueError("an AEAD key is 32 bytes and its nonce 12")
    out = _ffi.new("unsigned char[]", len(plaintext) + AEAD_TAG_BYTES)
    _lib.crypto_aead_chacha20poly1305_ietf_encrypt(out, _ffi.NULL, plaintext, len(plaintext),
                                                   ad, len(ad), _ffi.NULL, nonce, key)
    sealed: bytes = _ffi.buffer(out)[:]
    return sealed


def aead_decrypt(key: bytes, nonce: bytes, ad: bytes, ciphertext: bytes) -> bytes:
    """Open :func:`aead_encrypt`'s output; :class:`CannotDecrypt` if it does not authenticate."""
    if len(key) != AEAD_KEY_BYTES or len(nonce) != AEAD_NONCE_BYTES:
        raise ValueError("an AEAD key is 32 bytes and its nonce 12")
    n = len(ciphertext) - AEAD_TAG_BYTES
    if n < 0:
        raise CannotDecrypt()
    out = _ffi.new("unsigned char[]", max(n, 1))
    if _lib.crypto_aead_chacha20poly1305_ietf_decrypt(out, _ffi.NULL, _ffi.NULL, ciphertext,
                                                      len(ciphertext), ad, len(ad), nonce,
                                                      key) != 0:
        raise CannotDecrypt()
    plain: bytes = _ffi.buffer(out, n)[:]
    return plain


def blake2b_512(data: bytes) -> bytes:
    """The unkeyed 64-byte BLAKE2b hash of ``data`` (RFC 7693). Noise ``HASH``."""
    return hashlib.blake2b(data, digest_size=BLAKE2B_BYTES).digest()


def hmac_blake2b(key: bytes, data: bytes) -> bytes:
    """HMAC (RFC 2104) over 64-byte BLAKE2b, 128-byte block: Noise rev. 34 4.3 ``HMAC-HASH``."""
    # the standard library's RFC 2104 over hashlib's blake2b (64-byte digest, 128-byte
    # block): a third faster than hmac.digest(..., "blake2b"), which goes through OpenSSL
    return hmac.new(key, data, hashlib.blake2b).digest()


def hmac_blake2b_keyed(key: bytes) -> hmac.HMAC:
    """An HMAC-BLAKE2b state (RFC 2104, as :func:`hmac_blake2b`) with ``key``'s pads
    already hashed: ``copy()`` it, ``update`` the copy, ``digest()`` (64 bytes). For
    several MACs under one key (Noise's HKDF: two or three outputs per ``temp_key``)."""
    return hmac.new(key, None, hashlib.blake2b)


# --- Password sealing ------------------------------------------------------------

# LAN discovery tags (docs/protocol.md, "LAN discovery"): a keyed hash that only someone
# who already knows the fingerprint can compute, changing every UTC day.
CTX_LAN_TAG = b"diwan/v1/lan-tag\x00"
LAN_TAG_BYTES = 8


def lan_tag(fingerprint_bytes: bytes, day: str) -> bytes:
    """The blinded LAN tag of an identity on one UTC ``day`` (``YYYY-MM-DD``): BLAKE2b keyed
    with the 32-byte fingerprint over ``CTX_LAN_TAG || day``, truncated to 8 bytes.

    Raises :class:`ValueError` for a key that is not 32 bytes or a day that is not ASCII.
    """
    if len(fingerprint_bytes) != PUBLIC_KEY_BYTES:
        raise ValueError("a fingerprint is 32 bytes")
    return hashlib.blake2b(CTX_LAN_TAG + day.encode("ascii"), key=fingerprint_bytes,
                           digest_size=LAN_TAG_BYTES).digest()


def new_salt() -> bytes:
    """A fresh random 16-byte Argon2id salt (``docs/protocol.md``, The private key file)."""
    return nacl.utils.random(SALT_BYTES)


def derive_key(password: bytes, salt: bytes, opslimit: int, memlimit: int) -> bytes:
    """A 32-byte key from ``password`` (UTF-8 bytes) with Argon2id v1.3.

    ``salt`` is 16 bytes, ``opslimit`` passes, ``memlimit`` bytes of memory
    (``docs/protocol.md``, Key documents: The private key file). Parameters libsodium refuses
    raise ``ValueError``; callers check them against the floor and ceiling first.
    """
    return nacl.pwhash.argon2id.kdf(nacl.secret.SecretBox.KEY_SIZE, password, salt,
                                    opslimit=opslimit, memlimit=memlimit)


def secret_seal(key: bytes, plaintext: bytes) -> bytes:
    """``crypto_secretbox`` (XSalsa20-Poly1305) under a 32-byte ``key``: ``nonce (24) ||
    tag (16) || ciphertext``, 40 bytes longer than ``plaintext`` (``docs/protocol.md``, The
    private key file)."""
    return bytes(nacl.secret.SecretBox(key).encrypt(plaintext))


def secret_open(key: bytes, ciphertext: bytes) -> bytes:
    """Open a :func:`secret_seal` ciphertext with the 32-byte ``key``.

    A wrong key or damaged ciphertext raises :class:`WrongPassword`: the key comes from a
    password, and a wrong password is the likely cause (``docs/protocol.md``, The private key
    file: Opening).
    """
    try:
        return bytes(nacl.secret.SecretBox(key).decrypt(ciphertext))
    except (nacl.exceptions.CryptoError, nacl.exceptions.ValueError) as exc:
        raise WrongPassword() from exc
