"""The self-verifying ``.pub`` document: the identity key and its device certificates.

``.pub`` document (ASCII, LF line ends; docs/protocol.md, "The public key document")::

    diwan-public-key-v2
    sign <base64url of the 32-byte Ed25519 public key>
    device <ID> <SERIAL> <base64url X25519 public key> <base64url certificate>
    ... (1 to MAX_DEVICES device lines)

Each certificate is the identity key's signature, under ``CTX_DEVICE_CERT``, of
``sign_public || ID (16 ASCII bytes) || SERIAL (8 bytes big-endian) || transport_public``.
The fingerprint is the hex SHA-256 of the raw Ed25519 public key.

The private key file lives in :mod:`keyfile`; its names are re-exported here.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

from ..base import crypto
from ..base.encoding import b64d, b64e
from ..base.errors import BadInput, BadKeyDocument, KeyConflict, UnusableKey
from .keyfile import DEVICE_ID_RE as DEVICE_ID_RE
from .keyfile import MAX_PASSWORD as MAX_PASSWORD
from .keyfile import MAX_SERIAL as MAX_SERIAL
from .keyfile import MIN_PASSWORD as MIN_PASSWORD
from .keyfile import PrivateKey as PrivateKey
from .keyfile import StoredTransport as StoredTransport
from .keyfile import check_kdf as check_kdf
from .keyfile import check_password as check_password
from .keyfile import kdf_cost as kdf_cost
from .keyfile import kdf_floor as kdf_floor
from .keyfile import parse_private as parse_private
from .keyfile import seal_private_key as seal_private_key

PUB_HEADER = "diwan-public-key-v2"
MAX_DEVICES = 8
# A retired device's serial (protocol.md, Retiring another node of the identity): above
# any a device reaches by rotating (each adds 1), exact in every JSON reader.
RETIRED_SERIAL = 2**53 - 1
MAX_PUB_BYTES = 2048

_SIGN_LINE = re.compile(rb"sign (?P<sign>[A-Za-z0-9_-]{43})")
_DEVICE_LINE = re.compile(rb"device (?P<id>[0-9a-f]{16}) (?P<serial>0|[1-9][0-9]{0,19}) "
                          rb"(?P<transport>[A-Za-z0-9_-]{43}) (?P<cert>[A-Za-z0-9_-]{86})")


@dataclass(frozen=True)
class DeviceCert:
    """One node's transport key for an identity: device id, serial, X25519 public key."""

    device_id: str
    serial: int
    transport_public: bytes

    def signed_bytes(self, sign_public: bytes) -> bytes:
        """What the certificate signs after ``CTX_DEVICE_CERT`` (protocol.md)."""
        return (sign_public + self.device_id.encode("ascii") + self.serial.to_bytes(8, "big")
                + self.transport_public)


@dataclass(frozen=True)
class PublicKey:
    """A verified public key document: the identity key and 1..MAX_DEVICES certificates.

    ``devices[i]`` is certified by ``certificates[i]`` (64-byte signatures).
    """

    sign: bytes
    devices: tuple[DeviceCert, ...]
    certificates: tuple[bytes, ...]

    @cached_property
    def fingerprint(self) -> str:
        """The identity's fingerprint: 64 lowercase hex characters, SHA-256 of ``sign``
        (computed once per object: the fields are frozen)."""
        return crypto.fingerprint(self.sign)

    @cached_property
    def transports(self) -> frozenset[bytes]:
        """The transport public keys the document certifies (one per device, retired
        ones too: nobody holds a retired device's secret)."""
        return frozenset(d.transport_public for d in self.devices)

    @property
    def transport_public(self) -> bytes:
        """The first device's transport key (the one a single-node identity has)."""
        return self.devices[0].transport_public

    @property
    def live_devices(self) -> tuple[DeviceCert, ...]:
        """The devices not retired (serial below :data:`RETIRED_SERIAL`), in order: the
        keys worth asking with (nobody holds a retired device's key)."""
        return tuple(d for d in self.devices if d.serial < RETIRED_SERIAL)

    def device(self, device_id: str) -> DeviceCert | None:
        """The certificate of ``device_id``, or None if the document does not name it."""
        return next((d for d in self.devices if d.device_id == device_id), None)

    def to_bytes(self) -> bytes:
        """The canonical ``.pub`` document: ASCII, LF-terminated lines (protocol.md)."""
        lines = [PUB_HEADER, f"sign {b64e(self.sign)}"]
        lines += [f"device {d.device_id} {d.serial} {b64e(d.transport_public)} {b64e(c)}"
                  for d, c in zip(self.devices, self.certificates, strict=True)]
        return ("\n".join(lines) + "\n").encode("ascii")


def _check_device(device: DeviceCert) -> None:
    if not DEVICE_ID_RE.fullmatch(device.device_id):
        raise BadInput("a device id is 16 lowercase hexadecimal characters", field="device")
    if not 0 <= device.serial <= MAX_SERIAL:
        raise BadInput("a certificate serial is an unsigned 64-bit integer", field="serial")
    crypto.check_transport_public(device.transport_public)


def certify_device(seed: bytes, device: DeviceCert) -> bytes:
    """The identity key's certificate (64 bytes) of ``device`` (protocol.md)."""
    _check_device(device)
    return crypto.sign(seed, crypto.CTX_DEVICE_CERT,
                       device.signed_bytes(crypto.signing_public(seed)))


def certify(seed: bytes, devices: bytes | Sequence[DeviceCert], *,
            device_id: str | None = None, serial: int = 1) -> PublicKey:
    """A ``.pub`` for the identity of ``seed`` certifying each of ``devices``, in order.

    ``devices`` may also be one X25519 public key (32 bytes): then the document
    has one device, ``device_id`` (default: derived from the two keys, so the
    same inputs give the same document; real identities draw a random one) and
    ``serial``. :class:`UnusableKey` for an unusable transport key.
    """
    if isinstance(devices, bytes | bytearray):
        transport = bytes(devices)
        if device_id is None:
            device_id = crypto.fingerprint(crypto.signing_public(seed) + transport)[:16]
        devices = [DeviceCert(device_id, serial, transport)]
    certs = tuple(certify_device(seed, d) for d in devices)
    return _checked(PublicKey(crypto.signing_public(seed), tuple(devices), certs))


def with_device(seed: bytes, current: PublicKey, device: DeviceCert) -> PublicKey:
    """``current`` with ``device`` added or replacing the same device id (serial must rise)."""
    return merge_pub(current, certify(seed, [device]))


def _checked(key: PublicKey) -> PublicKey:
    if not 1 <= len(key.devices) <= MAX_DEVICES:
        raise BadKeyDocument(f"a key document certifies 1 to {MAX_DEVICES} devices",
                             field="public_key")
    if len({d.device_id for d in key.devices}) != len(key.devices):
        raise BadKeyDocument("a device appears twice in the key document", field="public_key")
    return key


_VERIFIED: dict[bytes, PublicKey] = {}  # exact document bytes -> the key they verified as
_VERIFIED_MAX = 256                     # documents remembered (a sync checks the same few)


def parse_pub(data: bytes | str, *, expected_fp: str | None = None) -> PublicKey:
    """Parse and verify a ``.pub`` document (protocol.md, checks in its order).

    Raises :class:`BadKeyDocument` for a document too long, not in the exact
    syntax, with a non-canonical value, a device twice, a certificate that does
    not verify, a transport key that is unusable (small order, non-canonical),
    or a fingerprint other than ``expected_fp``. The same bytes verify the same way
    every time: the last :data:`_VERIFIED_MAX` documents that verified are remembered.
    """
    raw = bytes(data.encode("utf-8", "replace") if isinstance(data, str) else data)
    key = _VERIFIED.get(raw)
    if key is None:
        key = _parse_pub(raw)
        if len(_VERIFIED) >= _VERIFIED_MAX:
            _VERIFIED.clear()
        _VERIFIED[raw] = key
    if expected_fp is not None and key.fingerprint != expected_fp:
        raise BadKeyDocument("the key does not match the fingerprint it came under",
                             field="public_key")
    return key


def _parse_pub(raw: bytes) -> PublicKey:
    if len(raw) > MAX_PUB_BYTES:
        raise BadKeyDocument("the public key document is too long", field="public_key")
    lines = raw.split(b"\n")
    if (len(lines) < 4 or lines[0] != PUB_HEADER.encode() or lines[-1] != b""
            or not _SIGN_LINE.fullmatch(lines[1])):
        raise BadKeyDocument(f"not a {PUB_HEADER} document", field="public_key")
    matches = []
    for line in lines[2:-1]:
        m = _DEVICE_LINE.fullmatch(line)
        if m is None:
            raise BadKeyDocument(f"not a {PUB_HEADER} document (bad device line)",
                                 field="public_key")
        matches.append(m)
    try:
        sign = b64d(lines[1][5:], length=32)
        devices, certs = [], []
        for m in matches:
            serial = int(m["serial"])
            if serial > MAX_SERIAL:
                raise BadKeyDocument("a certificate serial is an unsigned 64-bit integer",
                                     field="public_key")
            devices.append(DeviceCert(m["id"].decode(), serial,
                                      b64d(m["transport"], length=32)))
            certs.append(b64d(m["cert"], length=64))
    except BadInput as exc:
        raise BadKeyDocument(f"public key document: {exc.message}", field="public_key") from None
    key = _checked(PublicKey(sign, tuple(devices), tuple(certs)))
    for device, cert in zip(key.devices, key.certificates, strict=True):
        if not crypto.verify(sign, crypto.CTX_DEVICE_CERT, device.signed_bytes(sign), cert):
            raise BadKeyDocument("a device certificate does not verify", field="public_key")
        try:
            crypto.check_transport_public(device.transport_public)
        except UnusableKey:
            raise BadKeyDocument("a device's transport key is unusable (small order or "
                                 "not canonical)", field="public_key") from None
    return key


def merge_pub(stored: PublicKey, incoming: PublicKey, *, keep_newer: bool = False
              ) -> PublicKey:
    """``stored`` updated with ``incoming``'s certificates (protocol.md, "Rotation").

    Same identity key required. Per device id: absent in ``stored`` → added
    (after the stored ones); a higher serial → replaces it in place; the same
    serial with the same key and certificate → unchanged. A lower serial, or
    the same serial with other content, raises :class:`KeyConflict`; so does a
    result of more than MAX_DEVICES devices. Returns ``stored`` itself when
    nothing changes. With ``keep_newer`` (a document received in the feed
    exchange, protocol.md, "Serving a request" step 7) a lower serial is not a
    conflict: the sender's copy is stale about that device (another node of the
    identity rotated since) and the held certificate is kept.
    """
    if stored.sign != incoming.sign:
        raise KeyConflict("the key document is for another identity", field="public_key")
    devices, certs = list(stored.devices), list(stored.certificates)
    for device, cert in zip(incoming.devices, incoming.certificates, strict=True):
        i = next((n for n, d in enumerate(devices) if d.device_id == device.device_id), None)
        if i is None:
            devices.append(device)
            certs.append(cert)
        elif device.serial > devices[i].serial:
            devices[i], certs[i] = device, cert
        elif keep_newer and device.serial < devices[i].serial:
            continue
        elif (device, cert) != (devices[i], certs[i]):
            raise KeyConflict(f"device {device.device_id}: serial {device.serial} does not "
                              f"replace the held serial {devices[i].serial}",
                              field="public_key")
    if devices == list(stored.devices) and certs == list(stored.certificates):
        return stored
    if len(devices) > MAX_DEVICES:
        raise KeyConflict(f"an identity has at most {MAX_DEVICES} devices",
                          field="public_key")
    return _checked(PublicKey(stored.sign, tuple(devices), tuple(certs)))
