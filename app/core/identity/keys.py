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
    """A verified public key document."""

    sign: bytes
    transport: bytes
    certificate: bytes

    @property
    def fingerprint(self) -> str:
        return crypto.fingerprint(self.sign)

    def to_bytes(self) -> bytes:
        return (f"{PUB_HEADER}\nsign {b64e(self.sign)}\ntransport {b64e(self.transport)}\n"
                f"certificate {b64e(self.certificate)}\n").encode("ascii")


def certify(seed: bytes, transport_public: bytes) -> PublicKey:
    sign_public = crypto.signing_public(seed)
    cert = crypto.sign_in_context(seed, crypto.CTX_TRANSPORT_CERT, sign_public + transport_public)
    return PublicKey(sign_public, transport_public, cert)


def parse_pub(data: bytes | str, *, expected_fp: str | None = None) -> PublicKey:
    """Parse and verify a ``.pub`` document; raise :class:`BadKeyDocument` otherwise."""
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
    """The contents of a private key file; the seed stays sealed until opened."""

    fingerprint: str
    kdf: dict[str, Any]
    sealed_seed: bytes
    transport_secret: bytes

    def to_bytes(self) -> bytes:
        doc = {"format": PRIVATE_FORMAT, "fingerprint": self.fingerprint, "kdf": self.kdf,
               "sealed_seed": b64e(self.sealed_seed),
               "transport_secret": b64e(self.transport_secret)}
        return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode("ascii")

    def open_seed(self, password: str) -> bytes:
        """The Ed25519 seed; :class:`WrongPassword` if the password is wrong."""
        key = crypto.derive_key(_password_bytes(password), b64d(self.kdf["salt"]),
                                int(self.kdf["opslimit"]), int(self.kdf["memlimit"]))
        seed = crypto.secret_open(key, self.sealed_seed)
        if crypto.fingerprint(crypto.signing_public(seed)) != self.fingerprint:
            raise CorruptFile("the private key file does not match its fingerprint")
        return seed


def seal_private_key(seed: bytes, transport_secret: bytes, password: str,
                     opslimit: int, memlimit: int) -> PrivateKey:
    salt = crypto.new_salt()
    key = crypto.derive_key(_password_bytes(password), salt, opslimit, memlimit)
    kdf = {"alg": crypto.KDF_ALG, "opslimit": opslimit, "memlimit": memlimit, "salt": b64e(salt)}
    return PrivateKey(crypto.fingerprint(crypto.signing_public(seed)), kdf,
                      crypto.secret_seal(key, seed), transport_secret)


def parse_private(data: bytes) -> PrivateKey:
    try:
        doc = json.loads(data)
        if doc.get("format") != PRIVATE_FORMAT or doc["kdf"]["alg"] != crypto.KDF_ALG:
            raise ValueError("unknown format")
        return PrivateKey(doc["fingerprint"], dict(doc["kdf"]), b64d(doc["sealed_seed"]),
                          b64d(doc["transport_secret"], length=32))
    except (ValueError, KeyError, TypeError, AttributeError, BadInput) as exc:
        raise CorruptFile(f"unreadable private key file: {exc}") from None
