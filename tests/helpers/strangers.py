"""Somebody else's identity for a test: keys in memory, no key file, no Argon2id.

``new_stranger()`` makes a fresh one (or a fixed one from a given seed and
transport secret); every test module that needs somebody else's key uses it.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.core.base import crypto
from app.core.identity import keys
from app.core.network.exchange import OwnKeys


@dataclass(frozen=True)
class Stranger:
    """An identity whose secrets live only in the test: ``seed`` signs, ``transport`` decrypts."""

    seed: bytes
    transport: bytes
    key: keys.PublicKey

    @property
    def fp(self) -> str:
        """The fingerprint (64 hex digits)."""
        return self.key.fingerprint

    @property
    def document(self) -> bytes:
        """The ``.pub`` document others import."""
        return self.key.to_bytes()

    @property
    def own(self) -> OwnKeys:
        """The keys the feed exchange uses when this stranger asks or answers."""
        return OwnKeys(self.fp, self.document, self.transport)

    def rekeyed(self) -> Stranger:
        """A rival document: the same identity certifying a fresh transport key for the same
        device and serial (same fingerprint, other document; the serial rule refuses it)."""
        transport = crypto.new_transport_secret()
        device = self.key.devices[0]
        return Stranger(self.seed, transport, keys.certify(
            self.seed, crypto.transport_public(transport), device_id=device.device_id,
            serial=device.serial))


def new_stranger(seed: bytes | None = None, transport: bytes | None = None) -> Stranger:
    """A stranger from ``seed`` and ``transport`` (32 bytes each), fresh random ones by default."""
    seed = crypto.new_signing_seed() if seed is None else seed
    transport = crypto.new_transport_secret() if transport is None else transport
    return Stranger(seed, transport, keys.certify(seed, crypto.transport_public(transport)))
