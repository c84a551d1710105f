"""The Noise Protocol Framework's IK pattern: ``Noise_IK_25519_ChaChaPoly_BLAKE2b``.

An implementation of the Noise specification, revision 34 (2018-07-11), sections 5
(CipherState, SymmetricState, HandshakeState), 7.5 (the IK pattern) and 12 (the
25519, ChaChaPoly and BLAKE2b functions), over the primitives in :mod:`.crypto`.
``HASHLEN`` is 64, ``BLOCKLEN`` 128; cipher keys are the first 32 bytes of each
HKDF output. No PSK modifiers, no fallback. Checked byte for byte against the
published cacophony, snow and noise-c test vectors (``tests/data/noise/``).

Usage, one handshake (``<- s`` known to the initiator; ``-> e, es, s, ss``; ``<- e, ee, se``)::

    i = HandshakeState.initiator(prologue, s=alice, rs=bob.public)
    r = HandshakeState.responder(prologue, s=bob)
    payload1 = r.read_message(i.write_message(b"request"))
    payload2 = i.read_message(r.write_message(b"response"))
    i_send, i_recv = i.split()     # i_send pairs with r's first CipherState
"""

from __future__ import annotations

from typing import NamedTuple

from . import crypto
from .errors import CannotDecrypt, MessageTooLarge, NoiseStateError, UnusableKey

PROTOCOL_NAME = b"Noise_IK_25519_ChaChaPoly_BLAKE2b"
DHLEN = 32
HASHLEN = crypto.BLAKE2B_BYTES        # 64
KEYLEN = crypto.AEAD_KEY_BYTES        # 32
TAGLEN = crypto.AEAD_TAG_BYTES        # 16
MAX_MESSAGE_BYTES = 65535             # spec section 3: every Noise message
MAX_NONCE = 2**64 - 1                 # reserved (section 5.1): never used to encrypt
EMPTY = b""

# Sizes of IK's two handshake messages around their payloads.
MESSAGE1_OVERHEAD = DHLEN + (DHLEN + TAGLEN) + TAGLEN   # 96
MESSAGE2_OVERHEAD = DHLEN + TAGLEN                      # 48


class Keypair(NamedTuple):
    """An X25519 key pair: 32-byte ``secret`` and 32-byte ``public``. ``repr`` hides the secret."""

    secret: bytes
    public: bytes

    def __repr__(self) -> str:
        return f"Keypair(public={self.public.hex()}, secret=<hidden>)"


def generate_keypair() -> Keypair:
    """A fresh random X25519 key pair (spec section 4.1, ``GENERATE_KEYPAIR``)."""
    secret = crypto.random_bytes(DHLEN)  # X25519 clamps when it multiplies
    return Keypair(secret, crypto.x25519_public(secret))


def keypair_from_secret(secret: bytes) -> Keypair:
    """The key pair of a 32-byte X25519 secret; :class:`UnusableKey` for another length."""
    return Keypair(secret, crypto.x25519_public(secret))


def hkdf(chaining_key: bytes, input_key_material: bytes, num_outputs: int) -> tuple[bytes, ...]:
    """Noise's HKDF (spec section 4.3): 2 or 3 outputs of HASHLEN bytes, HMAC-BLAKE2b."""
    keyed = crypto.hmac_blake2b_keyed(crypto.hmac_blake2b(chaining_key, input_key_material))
    outputs: list[bytes] = []
    previous = EMPTY
    for i in range(1, num_outputs + 1):  # HMAC(temp_key, ...): temp_key's pads hashed once
        mac = keyed.copy()
        mac.update(previous + bytes((i,)))
        previous = mac.digest()
        outputs.append(previous)
    return tuple(outputs)


def _nonce(n: int) -> bytes:
    """ChaChaPoly's 96-bit nonce: 32 zero bits, then the 64-bit counter little-endian (12.3)."""
    return b"\x00\x00\x00\x00" + n.to_bytes(8, "little")


class CipherState:
    """A key ``k`` (32 bytes, or none yet) and a 64-bit nonce counter ``n`` (spec section 5.1).

    Every message it makes or opens holds at most 65,535 bytes (16-byte tag included).
    Encrypting past nonce 2^64-2 raises :class:`NoiseStateError`; the session must then
    end. ``split()`` gives transport CipherStates; a failed decryption leaves ``n``
    unchanged (the message is dropped, the session may go on).
    """

    def __init__(self, key: bytes | None = None) -> None:
        self._k = key
        self._n = 0

    def has_key(self) -> bool:
        """Whether a key is set (spec ``HasKey``); without one, messages pass in clear."""
        return self._k is not None

    @property
    def nonce(self) -> int:
        """The number of messages this state has encrypted or opened."""
        return self._n

    def set_nonce(self, nonce: int) -> None:
        """Set ``n`` (spec ``SetNonce``); for out-of-order transports and tests.

        Raises :class:`NoiseStateError` for a nonce outside 0..2^64-2.
        """
        if not 0 <= nonce <= MAX_NONCE:
            raise NoiseStateError("A Noise nonce is a 64-bit unsigned integer.")
        self._n = nonce

    def _next_nonce(self) -> int:
        if self._n >= MAX_NONCE:
            raise NoiseStateError("This Noise session has used all its nonces; start a new one.")
        return self._n

    def encrypt_with_ad(self, ad: bytes, plaintext: bytes) -> bytes:
        """``ENCRYPT(k, n++, ad, plaintext)``: ``len(plaintext) + 16`` bytes (plaintext if no key).

        :class:`MessageTooLarge` if the result would exceed 65,535 bytes.
        """
        if len(plaintext) + (TAGLEN if self._k is not None else 0) > MAX_MESSAGE_BYTES:
            raise MessageTooLarge()
        if self._k is None:
            return plaintext
        n = self._next_nonce()
        ciphertext = crypto.aead_encrypt(self._k, _nonce(n), ad, plaintext)
        self._n = n + 1
        return ciphertext

    def decrypt_with_ad(self, ad: bytes, ciphertext: bytes) -> bytes:
        """Open ``ciphertext`` under ``k`` and ``n``; ``n`` advances only on success.

        :class:`CannotDecrypt` if it does not authenticate, is shorter than a tag
        or longer than 65,535 bytes.
        """
        if len(ciphertext) > MAX_MESSAGE_BYTES:
            raise CannotDecrypt("A Noise message holds at most 65,535 bytes.")
        if self._k is None:
            return ciphertext
        n = self._next_nonce()
        plaintext = crypto.aead_decrypt(self._k, _nonce(n), ad, ciphertext)
        self._n = n + 1
        return plaintext

    def rekey(self) -> None:
        """``k = REKEY(k)``: the first 32 bytes of ``ENCRYPT(k, 2^64-1, "", 32 zero bytes)``.

        Raises :class:`NoiseStateError` if no key is set.
        """
        if self._k is None:
            raise NoiseStateError("A CipherState without a key cannot rekey.")
        self._k = crypto.aead_encrypt(self._k, _nonce(MAX_NONCE), EMPTY, bytes(32))[:KEYLEN]

    def __repr__(self) -> str:
        return f"CipherState(keyed={self._k is not None}, n={self._n})"


class SymmetricState:
    """The chaining key ``ck``, handshake hash ``h`` and a CipherState (spec section 5.2)."""

    def __init__(self, protocol_name: bytes) -> None:
        if len(protocol_name) <= HASHLEN:
            self.h = protocol_name.ljust(HASHLEN, b"\x00")
        else:
            self.h = crypto.blake2b_512(protocol_name)
        self.ck = self.h
        self.cipher = CipherState()

    def mix_key(self, input_key_material: bytes) -> None:
        """Spec ``MixKey``: ``ck, k = HKDF(ck, ikm, 2)``; a new cipher key (nonce 0)."""
        self.ck, temp_k = hkdf(self.ck, input_key_material, 2)
        self.cipher = CipherState(temp_k[:KEYLEN])

    def mix_hash(self, data: bytes) -> None:
        """Spec ``MixHash``: ``h = BLAKE2b(h || data)`` (64 bytes)."""
        self.h = crypto.blake2b_512(self.h + data)

    def encrypt_and_hash(self, plaintext: bytes) -> bytes:
        """Spec ``EncryptAndHash``: encrypt with ``h`` as associated data, then mix the
        ciphertext into ``h``. Raises :class:`MessageTooLarge` past 65,535 bytes."""
        ciphertext = self.cipher.encrypt_with_ad(self.h, plaintext)
        self.mix_hash(ciphertext)
        return ciphertext

    def decrypt_and_hash(self, ciphertext: bytes) -> bytes:
        """Spec ``DecryptAndHash``: open with ``h`` as associated data, then mix the
        ciphertext into ``h``. Raises :class:`CannotDecrypt` if it does not open."""
        plaintext = self.cipher.decrypt_with_ad(self.h, ciphertext)
        self.mix_hash(ciphertext)
        return plaintext

    def split(self) -> tuple[CipherState, CipherState]:
        """Spec ``Split``: two CipherStates from ``HKDF(ck, "", 2)`` (initiator's first)."""
        temp_k1, temp_k2 = hkdf(self.ck, EMPTY, 2)
        return CipherState(temp_k1[:KEYLEN]), CipherState(temp_k2[:KEYLEN])

    def __repr__(self) -> str:
        return "SymmetricState(<secret>)"


class HandshakeState:
    """One side of a ``Noise_IK_25519_ChaChaPoly_BLAKE2b`` handshake (spec sections 5.3, 7.5).

    Build it with :meth:`initiator` or :meth:`responder`; the initiator calls
    ``write_message`` then ``read_message``, the responder ``read_message`` then
    ``write_message``; then :meth:`split`. Message 1 is ``96 + len(payload)``
    bytes, message 2 ``48 + len(payload)``; each at most 65,535 bytes.

    Any failure ends the handshake: later calls raise :class:`NoiseStateError`.
    ``read_message`` raises :class:`CannotDecrypt` (and nothing else) for any
    message that is short, long, garbled, carries a small-order key or was made
    for another key. For message 1 it does the same X25519 and AEAD work
    whether the message opens or not (a responder holding a decoy key costs as
    much as one holding the right key).
    """

    def __init__(self, *, initiator: bool, prologue: bytes, s: Keypair,
                 e: Keypair | None, rs: bytes | None) -> None:
        if len(s.secret) != DHLEN or len(s.public) != DHLEN:
            raise UnusableKey("A Noise static key pair is two 32-byte strings.")
        if rs is not None:
            crypto.check_x25519_public(rs)
        self._initiator = initiator
        self._s = s
        self._e = e
        self._rs = rs
        self._re: bytes | None = None
        self._step = 0          # messages processed so far: 0, 1 or 2
        self._failed = False
        self._split = False
        self._symmetric = SymmetricState(PROTOCOL_NAME)
        self._symmetric.mix_hash(prologue)
        # Pre-message pattern "<- s": both sides hash the responder's static key.
        self._symmetric.mix_hash(rs if initiator and rs is not None else s.public)

    @classmethod
    def initiator(cls, prologue: bytes, s: Keypair, rs: bytes, *,
                  e: Keypair | None = None) -> HandshakeState:
        """The asker: own static ``s``, the responder's 32-byte static public key ``rs``.

        ``e`` fixes the ephemeral key (test vectors only). :class:`UnusableKey` if
        a key has the wrong length or ``rs`` has small order.
        """
        return cls(initiator=True, prologue=prologue, s=s, e=e, rs=rs)

    @classmethod
    def responder(cls, prologue: bytes, s: Keypair, *,
                  e: Keypair | None = None) -> HandshakeState:
        """The answerer with static key ``s`` (real or decoy); ``e`` for test vectors only."""
        return cls(initiator=False, prologue=prologue, s=s, e=e, rs=None)

    @property
    def remote_static(self) -> bytes | None:
        """The other side's static public key (the responder learns it from message 1)."""
        return self._rs

    @property
    def complete(self) -> bool:
        """True once both handshake messages are written or read."""
        return self._step == 2 and not self._failed

    @property
    def handshake_hash(self) -> bytes:
        """``h``: 64 bytes naming this handshake (channel binding); final once complete."""
        return self._symmetric.h

    def split(self) -> tuple[CipherState, CipherState]:
        """(initiator-to-responder, responder-to-initiator) CipherStates.

        Once only (a second pair would reuse nonces); :class:`NoiseStateError`
        before the handshake is complete or when called again.
        """
        if not self.complete:
            raise NoiseStateError("The Noise handshake is not complete.")
        if self._split:
            raise NoiseStateError("The Noise handshake was already split.")
        self._split = True
        return self._symmetric.split()

    def _check_turn(self, writing: bool) -> None:
        if self._failed:
            raise NoiseStateError("This Noise handshake already failed.")
        my_turn = (self._step == 0) == self._initiator
        if self._step >= 2 or my_turn != writing:
            raise NoiseStateError("Noise handshake message out of order.")

    def write_message(self, payload: bytes) -> bytes:
        """The next handshake message carrying ``payload`` (encrypted).

        :class:`MessageTooLarge` if the message would exceed 65,535 bytes;
        :class:`UnusableKey` if the remote key has small order.
        """
        self._check_turn(writing=True)
        overhead = MESSAGE1_OVERHEAD if self._step == 0 else MESSAGE2_OVERHEAD
        if len(payload) + overhead > MAX_MESSAGE_BYTES:
            raise MessageTooLarge()
        try:
            message = self._write1(payload) if self._step == 0 else self._write2(payload)
        except BaseException:
            self._failed = True
            raise
        self._step += 1
        return message

    def _new_ephemeral(self) -> bytes:
        if self._e is None:
            self._e = generate_keypair()
        self._symmetric.mix_hash(self._e.public)
        return self._e.public

    def _write1(self, payload: bytes) -> bytes:  # -> e, es, s, ss
        assert self._rs is not None  # set by initiator(); not an input check
        sym = self._symmetric
        e_public = self._new_ephemeral()
        assert self._e is not None
        sym.mix_key(crypto.x25519(self._e.secret, self._rs))
        encrypted_s = sym.encrypt_and_hash(self._s.public)
        sym.mix_key(crypto.x25519(self._s.secret, self._rs))
        return e_public + encrypted_s + sym.encrypt_and_hash(payload)

    def _write2(self, payload: bytes) -> bytes:  # <- e, ee, se
        assert self._re is not None and self._rs is not None  # set by _read1
        sym = self._symmetric
        e_public = self._new_ephemeral()
        assert self._e is not None
        sym.mix_key(crypto.x25519(self._e.secret, self._re))
        sym.mix_key(crypto.x25519(self._e.secret, self._rs))
        return e_public + sym.encrypt_and_hash(payload)

    def read_message(self, message: bytes) -> bytes:
        """The payload of the other side's next handshake message.

        :class:`CannotDecrypt` for any message that does not open (see the class).
        """
        self._check_turn(writing=False)
        try:
            if len(message) > MAX_MESSAGE_BYTES:
                raise CannotDecrypt("A Noise message holds at most 65,535 bytes.")
            read = self._read1 if self._step == 0 else self._read2
            payload = read(bytes(message))
        except BaseException:
            self._failed = True
            raise
        self._step += 1
        return payload

    def _dh_or_none(self, secret: bytes, public: bytes) -> bytes | None:
        """X25519, or None for a small-order key (libsodium computes it all before refusing)."""
        try:
            return crypto.x25519(secret, public)
        except UnusableKey:
            return None

    def _read1(self, message: bytes) -> bytes:  # -> e, es, s, ss (responder)
        # Every step runs even after one failed, on stand-in values (zero bytes,
        # our own public key), so that a message that does not open makes the
        # same X25519, AEAD and hash calls as one that does.
        ok = len(message) >= MESSAGE1_OVERHEAD
        message = message.ljust(MESSAGE1_OVERHEAD, b"\x00")
        sym, s = self._symmetric, self._s
        re, encrypted_s, encrypted_payload = message[:32], message[32:80], message[80:]
        sym.mix_hash(re)
        es = self._dh_or_none(s.secret, re)
        ok = ok and es is not None
        sym.mix_key(es or bytes(DHLEN))
        try:
            rs = sym.decrypt_and_hash(encrypted_s)
        except CannotDecrypt:
            ok, rs = False, s.public
            sym.mix_hash(encrypted_s)
        ss = self._dh_or_none(s.secret, rs)
        ok = ok and ss is not None
        sym.mix_key(ss or bytes(DHLEN))
        try:
            payload = sym.decrypt_and_hash(encrypted_payload)
        except CannotDecrypt:
            ok, payload = False, b""
            sym.mix_hash(encrypted_payload)
        if not ok:
            raise CannotDecrypt()
        self._re, self._rs = re, rs
        return payload

    def _read2(self, message: bytes) -> bytes:  # <- e, ee, se (initiator)
        if len(message) < MESSAGE2_OVERHEAD:
            raise CannotDecrypt()
        assert self._e is not None  # set by _write1
        sym = self._symmetric
        re = message[:32]
        sym.mix_hash(re)
        try:
            sym.mix_key(crypto.x25519(self._e.secret, re))
            sym.mix_key(crypto.x25519(self._s.secret, re))
        except UnusableKey as exc:
            raise CannotDecrypt() from exc
        payload = sym.decrypt_and_hash(message[32:])
        self._re = re
        return payload

    def __repr__(self) -> str:
        role = "initiator" if self._initiator else "responder"
        return f"HandshakeState({role}, step={self._step}, failed={self._failed})"
