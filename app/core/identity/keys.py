"""Key documents: the self-verifying ``.pub`` document and the sealed private key file.

``.pub`` document (ASCII, exactly four lines, each ending in LF)::

    diwan-public-key-v1
    sign <base64url of the 32-byte Ed25519 public key>
    transport <base64url of the 32-byte X25519 public key>
    certificate <base64url of the Ed25519 signature of
                 CTX_TRANSPORT_CERT + sign_public + transport_public>

The fingerprint is the hex SHA-256 of the raw Ed25519 public key. The format
is normative in ``docs/protocol.md``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from ..base import crypto
from ..base.encoding import b64d, b64e
from ..base.errors import BadInput, BadKeyDocument, CorruptFile

PUB_HEADER = "diwan-public-key-v1"
PRIVATE_FORMAT = "diwan-private-key-v1"
MAX_PUB_BYTES = 512

_PUB_RE = re.compile(
    rb"diwan-public-key-v1\n"
    rb"sign (?P<sign>[A-Za-z0-9_-]{43})\n"
    rb"transport (?P<transport>[A-Za-z0-9_-]{43})\n"
    rb"certificate (?P<cert>[A-Za-z0-9_-]{86})\n"
)


@dataclass(frozen=True)
class PublicKey:
    """A verified public key document: ``sign`` (32-byte Ed25519 public key), ``transport``
    (32-byte X25519 public key) and ``certificate`` (64-byte Ed25519 signature of
    ``CTX_TRANSPORT_CERT + sign + transport``). ``docs/protocol.md``, The public key document.
    """

    sign: bytes
    transport: bytes
    certificate: bytes

    @property
    def fingerprint(self) -> str:
        """The identity's fingerprint: 64 lowercase hex characters, SHA-256 of ``sign``."""
        return crypto.fingerprint(self.sign)

    def to_bytes(self) -> bytes:
        """The canonical ``.pub`` document: 222 ASCII bytes, four LF-terminated lines."""
        return (f"{PUB_HEADER}\nsign {b64e(self.sign)}\ntransport {b64e(self.transport)}\n"
                f"certificate {b64e(self.certificate)}\n").encode("ascii")


def certify(seed: bytes, transport_public: bytes) -> PublicKey:
    """The public key document of the 32-byte Ed25519 ``seed``, certifying the 32-byte X25519
    ``transport_public`` key (``docs/protocol.md``, The public key document).

    Raises no project error; a seed of another length raises ``ValueError``.
    """
    sign_public = crypto.signing_public(seed)
    cert = crypto.sign_in_context(seed, crypto.CTX_TRANSPORT_CERT, sign_public + transport_public)
    return PublicKey(sign_public, transport_public, cert)


def parse_pub(data: bytes | str, *, expected_fp: str | None = None) -> PublicKey:
    """Parse and verify a ``.pub`` document (bytes, or text encoded as UTF-8).

    Checks, in the order of ``docs/protocol.md`` (The public key document): at most 512
    bytes, the four-line syntax, canonical base64url of 32/32/64 bytes, the certificate,
    then, if ``expected_fp`` is given, that the key's fingerprint is ``expected_fp``. Each
    failure raises :class:`BadKeyDocument` (``field`` ``public_key``) with its own message.
    """
    raw = data.encode("utf-8", "replace") if isinstance(data, str) else data
    if len(raw) > MAX_PUB_BYTES:
        raise BadKeyDocument("the public key document is too long", field="public_key")
    match = _PUB_RE.fullmatch(raw)
    if not match:
        raise BadKeyDocument("not a diwan-public-key-v1 document", field="public_key")
    try:
        key = PublicKey(b64d(match["sign"], length=32), b64d(match["transport"], length=32),
                        b64d(match["cert"], length=64))
    except BadInput as exc:
        raise BadKeyDocument(f"public key document: {exc.message}", field="public_key") from None
    if not crypto.verify_in_context(key.sign, crypto.CTX_TRANSPORT_CERT,
                                    key.sign + key.transport, key.certificate):
        raise BadKeyDocument("the transport key certificate does not verify", field="public_key")
    if expected_fp is not None and key.fingerprint != expected_fp:
        raise BadKeyDocument("the key does not match the fingerprint it came under",
                             field="public_key")
    return key


def _password_bytes(password: str) -> bytes:
    try:
        return password.encode("utf-8")
    except UnicodeEncodeError:
        raise BadInput("the password is not valid Unicode text", field="password") from None


@dataclass(frozen=True)
class PrivateKey:
    """The contents of a private key file; the seed stays sealed until opened.

    ``fingerprint`` (64 hex), ``kdf`` (``{"alg", "opslimit", "memlimit", "salt"}``, the salt
    base64url), ``sealed_seed`` (72-byte SecretBox of the seed) and ``transport_secret``
    (32-byte X25519 secret). ``docs/protocol.md``, The private key file.
    """

    fingerprint: str
    kdf: dict[str, Any]
    sealed_seed: bytes
    transport_secret: bytes

    def to_bytes(self) -> bytes:
        """The private key file's bytes: indented, sorted-key ASCII JSON ending in LF."""
        doc = {"format": PRIVATE_FORMAT, "fingerprint": self.fingerprint, "kdf": self.kdf,
               "sealed_seed": b64e(self.sealed_seed),
               "transport_secret": b64e(self.transport_secret)}
        return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode("ascii")

    def open_seed(self, password: str) -> bytes:
        """The 32-byte Ed25519 seed, opened with ``password`` (Argon2id, then SecretBox).

        Raises :class:`WrongPassword` if the password is wrong, :class:`BadInput` if it is
        not encodable as UTF-8 (a lone surrogate) or the stored salt is not base64url, and
        :class:`CorruptFile` if the opened seed is not the file's fingerprint's
        (``docs/protocol.md``, The private key file: Opening).
        """
        key = crypto.derive_key(_password_bytes(password), b64d(self.kdf["salt"]),
                                int(self.kdf["opslimit"]), int(self.kdf["memlimit"]))
        seed = crypto.secret_open(key, self.sealed_seed)
        if crypto.fingerprint(crypto.signing_public(seed)) != self.fingerprint:
            raise CorruptFile("the private key file does not match its fingerprint")
        return seed


def seal_private_key(seed: bytes, transport_secret: bytes, password: str,
                     opslimit: int, memlimit: int) -> PrivateKey:
    """Seal the 32-byte ``seed`` under ``password`` with a fresh salt and nonce.

    ``opslimit`` is Argon2id passes, ``memlimit`` bytes of memory; ``transport_secret`` (32
    bytes) is stored as it is (``docs/protocol.md``, The private key file). Raises
    :class:`BadInput` for a password not encodable as UTF-8.
    """
    salt = crypto.new_salt()
    key = crypto.derive_key(_password_bytes(password), salt, opslimit, memlimit)
    kdf = {"alg": crypto.KDF_ALG, "opslimit": opslimit, "memlimit": memlimit, "salt": b64e(salt)}
    return PrivateKey(crypto.fingerprint(crypto.signing_public(seed)), kdf,
                      crypto.secret_seal(key, seed), transport_secret)


def parse_private(data: bytes) -> PrivateKey:
    """Parse a private key file's bytes (``docs/protocol.md``, The private key file).

    The seed stays sealed. Raises :class:`CorruptFile` for anything that is not a
    ``diwan-private-key-v1`` JSON document with an ``argon2id13`` kdf and base64url keys.
    """
    try:
        doc = json.loads(data)
        if doc.get("format") != PRIVATE_FORMAT or doc["kdf"]["alg"] != crypto.KDF_ALG:
            raise ValueError("unknown format")
        return PrivateKey(doc["fingerprint"], dict(doc["kdf"]), b64d(doc["sealed_seed"]),
                          b64d(doc["transport_secret"], length=32))
    except (ValueError, KeyError, TypeError, AttributeError, BadInput) as exc:
        raise CorruptFile(f"unreadable private key file: {exc}") from None
