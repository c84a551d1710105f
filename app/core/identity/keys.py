"""Key documents: the self-verifying ``.pub`` document and the sealed private key file.

``.pub`` document (ASCII, LF line ends; docs/protocol.md, "The public key document")::

    diwan-public-key-v2
    sign <base64url of the 32-byte Ed25519 public key>
    device <ID> <SERIAL> <base64url X25519 public key> <base64url certificate>
    ... (1 to MAX_DEVICES device lines)

Each certificate is the identity key's signature, under ``CTX_DEVICE_CERT``, of
``sign_public || ID (16 ASCII bytes) || SERIAL (8 bytes big-endian) || transport_public``.
The fingerprint is the hex SHA-256 of the raw Ed25519 public key.

The private key file (JSON, ``diwan-private-key-v2``) holds the sealed Ed25519
seed, this node's device id and its transport secrets: the published one,
previous ones still in their grace window, and during a rotation the next one.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..base import config, crypto, names
from ..base.encoding import b64d, b64e
from ..base.errors import (
    BadInput,
    BadKeyDocument,
    CorruptFile,
    KeyConflict,
    UnusableKey,
    WeakKeyFile,
)

PUB_HEADER = "diwan-public-key-v2"
PRIVATE_FORMAT = "diwan-private-key-v2"
MAX_DEVICES = 8
MAX_SERIAL = 2**64 - 1
MAX_PUB_BYTES = 2048
MAX_PRIVATE_BYTES = 16384
MAX_TRANSPORT_KEYS = 16          # entries in one private key file
MIN_PASSWORD = 12                # characters
MAX_PASSWORD = 1024
DEVICE_ID_RE = re.compile(r"[0-9a-f]{16}")

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

    @property
    def fingerprint(self) -> str:
        return crypto.fingerprint(self.sign)

    @property
    def transport_public(self) -> bytes:
        """The first device's transport key (the one a single-node identity has)."""
        return self.devices[0].transport_public

    def device(self, device_id: str) -> DeviceCert | None:
        return next((d for d in self.devices if d.device_id == device_id), None)

    def to_bytes(self) -> bytes:
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


def parse_pub(data: bytes | str, *, expected_fp: str | None = None) -> PublicKey:
    """Parse and verify a ``.pub`` document (protocol.md, checks in its order).

    Raises :class:`BadKeyDocument` for a document too long, not in the exact
    syntax, with a non-canonical value, a device twice, a certificate that does
    not verify, a transport key that is unusable (small order, non-canonical),
    or a fingerprint other than ``expected_fp``.
    """
    raw = data.encode("utf-8", "replace") if isinstance(data, str) else data
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
                raise BadInput("a certificate serial is an unsigned 64-bit integer")
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
    if expected_fp is not None and key.fingerprint != expected_fp:
        raise BadKeyDocument("the key does not match the fingerprint it came under",
                             field="public_key")
    return key


def merge_pub(stored: PublicKey, incoming: PublicKey) -> PublicKey:
    """``stored`` updated with ``incoming``'s certificates (protocol.md, "Rotation").

    Same identity key required. Per device id: absent in ``stored`` → added
    (after the stored ones); a higher serial → replaces it in place; the same
    serial with the same key and certificate → unchanged. A lower serial, or
    the same serial with other content, raises :class:`KeyConflict`; so does a
    result of more than MAX_DEVICES devices. Returns ``stored`` itself when
    nothing changes.
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


# --- private key file --------------------------------------------------------------

def check_password(password: str, what: str = "password") -> bytes:
    """``password`` as UTF-8; :class:`BadInput` if not Unicode or not 12..1024 characters."""
    try:
        raw = password.encode("utf-8")
    except UnicodeEncodeError:
        raise BadInput(f"the {what} is not valid Unicode text", field=what) from None
    if len(password) < MIN_PASSWORD:
        raise BadInput(f"the {what} must be at least {MIN_PASSWORD} characters long",
                       field=what)
    if len(password) > MAX_PASSWORD:
        raise BadInput(f"the {what} is longer than {MAX_PASSWORD} characters", field=what)
    return raw


def _password_bytes(password: str) -> bytes:
    """Any Unicode password (opening an existing file needs no length rule)."""
    try:
        return password.encode("utf-8")
    except UnicodeEncodeError:
        raise BadInput("the password is not valid Unicode text", field="password") from None


def kdf_floor() -> tuple[int, int]:
    """The least (opslimit, memlimit) a key file may declare: MODERATE, or the
    minimum while the insecure-KDF switch is on."""
    if config.insecure_kdf():
        return crypto.KDF_OPSLIMIT_MIN, crypto.KDF_MEMLIMIT_MIN
    return crypto.KDF_OPSLIMIT_MODERATE, crypto.KDF_MEMLIMIT_MODERATE


def kdf_cost(settings: dict[str, Any]) -> tuple[int, int]:
    """The (opslimit, memlimit) for a new key file: the settings, or the minimum
    while the insecure-KDF switch is on."""
    if config.insecure_kdf():
        return crypto.KDF_OPSLIMIT_MIN, crypto.KDF_MEMLIMIT_MIN
    return int(settings["kdf_opslimit"]), int(settings["kdf_memlimit"])


def check_kdf(opslimit: int, memlimit: int) -> None:
    """:class:`WeakKeyFile` below the floor, :class:`CorruptFile` above the ceiling."""
    min_ops, min_mem = kdf_floor()
    if opslimit < min_ops or memlimit < min_mem:
        raise WeakKeyFile(f"the private key file declares Argon2id opslimit {opslimit} and "
                          f"memlimit {memlimit}; at least {min_ops} and {min_mem} are required "
                          "(re-create the identity or re-seal it with a current Diwan)")
    if opslimit > crypto.KDF_OPSLIMIT_MAX or memlimit > crypto.KDF_MEMLIMIT_MAX:
        raise CorruptFile(f"the private key file declares Argon2id opslimit {opslimit} and "
                          f"memlimit {memlimit}; at most {crypto.KDF_OPSLIMIT_MAX} and "
                          f"{crypto.KDF_MEMLIMIT_MAX} are allowed")


@dataclass(frozen=True)
class StoredTransport:
    """One transport secret in a private key file (``retired_at``: unix seconds when it
    was rotated out, None while it is the newest)."""

    serial: int
    secret: bytes = field(repr=False)
    retired_at: float | None = None

    @property
    def public(self) -> bytes:
        return crypto.transport_public(self.secret)


@dataclass(frozen=True)
class PrivateKey:
    """The contents of a private key file; the seed stays sealed until opened.

    ``transports`` is ordered by serial, newest last. Its repr shows no secret.
    """

    fingerprint: str
    kdf: dict[str, Any]
    sealed_seed: bytes = field(repr=False)
    device_id: str
    transports: tuple[StoredTransport, ...] = field(repr=False)

    def __repr__(self) -> str:
        return (f"PrivateKey(fingerprint={self.fingerprint!r}, device_id={self.device_id!r}, "
                f"serials={[t.serial for t in self.transports]})")

    def to_bytes(self) -> bytes:
        doc = {"format": PRIVATE_FORMAT, "fingerprint": self.fingerprint, "kdf": self.kdf,
               "sealed_seed": b64e(self.sealed_seed), "device": self.device_id,
               "transport": [{"serial": t.serial, "secret": b64e(t.secret),
                              "retired_at": t.retired_at} for t in self.transports]}
        return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode("ascii")

    def newest(self) -> StoredTransport:
        return self.transports[-1]

    def transport(self, serial: int) -> StoredTransport | None:
        return next((t for t in self.transports if t.serial == serial), None)

    def open_seed(self, password: str) -> bytes:
        """The Ed25519 seed; :class:`WrongPassword` if the password is wrong,
        :class:`WeakKeyFile` if the file's Argon2id cost is below the floor."""
        opslimit, memlimit = int(self.kdf["opslimit"]), int(self.kdf["memlimit"])
        check_kdf(opslimit, memlimit)
        key = crypto.derive_key(_password_bytes(password), b64d(self.kdf["salt"]),
                                opslimit, memlimit)
        seed = crypto.secret_open(key, self.sealed_seed)
        if crypto.fingerprint(crypto.signing_public(seed)) != self.fingerprint:
            raise CorruptFile("the private key file does not match its fingerprint")
        return seed

    def reseal(self, seed: bytes, password: str, opslimit: int, memlimit: int,
               transports: tuple[StoredTransport, ...]) -> PrivateKey:
        """A new file for the same identity and device: fresh salt and nonce."""
        return seal_private_key(seed, self.device_id, transports, password, opslimit, memlimit)


def seal_private_key(seed: bytes, device_id: str, transports: tuple[StoredTransport, ...],
                     password: str, opslimit: int, memlimit: int) -> PrivateKey:
    """Seal ``seed`` under ``password`` (checked: 12..1024 characters) with Argon2id."""
    raw = check_password(password)
    salt = crypto.new_salt()
    key = crypto.derive_key(raw, salt, opslimit, memlimit)
    kdf = {"alg": crypto.KDF_ALG, "opslimit": opslimit, "memlimit": memlimit, "salt": b64e(salt)}
    return PrivateKey(crypto.fingerprint(crypto.signing_public(seed)), kdf,
                      crypto.secret_seal(key, seed), device_id, transports)


def _int(value: Any, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{what} must be a non-negative integer")
    return value


def _transport_entry(item: Any) -> StoredTransport:
    if not isinstance(item, dict) or set(item) != {"serial", "secret", "retired_at"}:
        raise ValueError("bad transport entry")
    retired = item["retired_at"]
    if retired is not None and (not isinstance(retired, int | float) or isinstance(retired, bool)):
        raise ValueError("retired_at must be a number or null")
    serial = _int(item["serial"], "serial")
    if serial > MAX_SERIAL:
        raise ValueError("serial too large")
    return StoredTransport(serial, b64d(item["secret"], length=32),
                           None if retired is None else float(retired))


def parse_private(data: bytes) -> PrivateKey:
    """Parse a private key file (strict: exact members, bounded sizes); :class:`CorruptFile`."""
    try:
        if len(data) > MAX_PRIVATE_BYTES:
            raise ValueError("too long")
        doc = json.loads(data)
        if not isinstance(doc, dict):
            raise ValueError("not a JSON object")
        if doc.get("format") != PRIVATE_FORMAT:
            raise ValueError(f"not a {PRIVATE_FORMAT} file")
        kdf = doc["kdf"]
        if set(doc) != {"format", "fingerprint", "kdf", "sealed_seed", "device", "transport"} \
                or not isinstance(kdf, dict) or kdf.get("alg") != crypto.KDF_ALG \
                or set(kdf) != {"alg", "opslimit", "memlimit", "salt"}:
            raise ValueError("unknown members")
        _int(kdf["opslimit"], "opslimit")
        _int(kdf["memlimit"], "memlimit")
        b64d(kdf["salt"], length=crypto.SALT_BYTES)
        if not isinstance(doc["device"], str) or not DEVICE_ID_RE.fullmatch(doc["device"]):
            raise ValueError("bad device id")
        items = doc["transport"]
        if not isinstance(items, list) or not 1 <= len(items) <= MAX_TRANSPORT_KEYS:
            raise ValueError("bad transport list")
        transports = tuple(_transport_entry(item) for item in items)
        if [t.serial for t in transports] != sorted({t.serial for t in transports}):
            raise ValueError("transport serials must rise")
        names.fingerprint(doc["fingerprint"])
        return PrivateKey(doc["fingerprint"], dict(kdf), b64d(doc["sealed_seed"]),
                          doc["device"], transports)
    except (ValueError, KeyError, TypeError, AttributeError, BadInput) as exc:
        message = exc.message if isinstance(exc, BadInput) else str(exc)
        raise CorruptFile(f"unreadable private key file: {message}") from None
