"""The private key file ``identities/<FP>`` (``diwan-private-key-v2``, docs/protocol.md).

A JSON object: the Ed25519 seed sealed by the password (Argon2id, then SecretBox),
this node's device id, and its transport secrets: the published one, previous ones
still in their grace window and, during a rotation, the next one. Also the rules
for passwords and the Argon2id floor, ceiling and cost (with the insecure-KDF switch).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from ..base import config, crypto, names
from ..base.encoding import b64d, b64e
from ..base.errors import BadInput, CorruptFile, WeakKeyFile

PRIVATE_FORMAT = "diwan-private-key-v2"
MAX_PRIVATE_BYTES = 16384
MAX_TRANSPORT_KEYS = 16          # entries in one private key file
MAX_SERIAL = 2**64 - 1
MIN_PASSWORD = 12                # characters
MAX_PASSWORD = 1024
DEVICE_ID_RE = re.compile(r"[0-9a-f]{16}")


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
        """The 32-byte X25519 public key of ``secret``."""
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
        """The file's bytes: indented, sorted-key ASCII JSON ending in LF."""
        doc = {"format": PRIVATE_FORMAT, "fingerprint": self.fingerprint, "kdf": self.kdf,
               "sealed_seed": b64e(self.sealed_seed), "device": self.device_id,
               "transport": [{"serial": t.serial, "secret": b64e(t.secret),
                              "retired_at": t.retired_at} for t in self.transports]}
        return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode("ascii")

    def newest(self) -> StoredTransport:
        """The transport entry of the highest serial (the next one during a rotation)."""
        return self.transports[-1]

    def transport(self, serial: int) -> StoredTransport | None:
        """The transport entry of ``serial``, or None."""
        return next((t for t in self.transports if t.serial == serial), None)

    def open_seed(self, password: str) -> bytes:
        """The 32-byte Ed25519 seed, opened with ``password`` (Argon2id, then SecretBox).

        Raises :class:`WeakKeyFile` if the file's Argon2id cost is below the floor
        (:class:`CorruptFile` above the ceiling), :class:`WrongPassword` if the password is
        wrong, :class:`BadInput` if it is not Unicode text, and :class:`CorruptFile` if the
        opened seed is not the file's fingerprint's (``docs/protocol.md``, The private key
        file: Opening).
        """
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
