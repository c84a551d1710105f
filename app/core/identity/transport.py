"""This node's transport keys for its own identities: which one is current, rotation and
the grace window (``docs/protocol.md``, Key documents: Rotation). Imports ``base`` and
the identity layer's key formats only; :class:`Identities` calls in here.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from ..base import crypto
from ..base.datadir import DataDir
from ..base.errors import BadInput, CorruptFile, KeyConflict, NotFound
from ..base.fsio import write_atomic
from . import keyfile, keys


class Identities(Protocol):
    """What this module uses of :class:`identities.Identities` (no import back up)."""

    dd: DataDir
    dir: Path

    def public_key(self, fp: str, *, touch: bool = True) -> keys.PublicKey:
        """The verified stored ``.pub`` of ``fp`` (raises NotFound, BadKeyDocument)."""

    def private_key(self, fp: str) -> keys.PrivateKey:
        """The parsed private key file of the own ``fp`` (raises NotFound, CorruptFile)."""

    def private_path(self, fp: str) -> Path:
        """``identities/<fp>``."""

    def pub_path(self, fp: str, group: str | None = None) -> Path:
        """``identities/<fp>.pub`` (or its copy in a group)."""

    def groups(self) -> list[str]:
        """The sorted group names."""


@dataclass(frozen=True)
class TransportKey:
    """One of this node's transport keys for an own identity.

    ``secret`` and ``public`` are 32-byte X25519 keys (the secret never in a repr).
    ``retired_at`` is None for the current (published) key; a previous key of this
    device carries the unix time it was rotated out and is dropped once
    ``transport_grace_seconds`` have passed since.
    """

    device_id: str
    serial: int
    secret: bytes = field(repr=False)
    public: bytes
    retired_at: float | None


def new_device_id() -> str:
    """A fresh random device id (16 lowercase hex characters, 64 random bits)."""
    return crypto.random_bytes(8).hex()


def published(ids: Identities, fp: str, private: keys.PrivateKey) -> keys.StoredTransport:
    """The transport entry of ``private`` that ``fp``'s stored ``.pub`` certifies for this
    node's device. :class:`CorruptFile` if the ``.pub`` certifies none this node holds."""
    device = ids.public_key(fp, touch=False).device(private.device_id)
    entry = None if device is None else private.transport(device.serial)
    if entry is None or device is None or entry.public != device.transport_public:
        raise CorruptFile(f"the .pub of {fp} does not certify a transport key this node holds")
    return entry


def usable_keys(ids: Identities, fp: str, now: float | None = None) -> list[TransportKey]:
    """This node's usable transport keys for the own ``fp``, current first (see
    :meth:`Identities.transport_keys`). :class:`CorruptFile` as :func:`published`."""
    private = ids.private_key(fp)
    current = published(ids, fp, private).serial
    t = time.time() if now is None else now
    grace = ids.dd.settings["transport_grace_seconds"]
    out = []
    for entry in reversed(private.transports):
        if entry.serial == current:
            retired = None
        elif entry.serial > current or (entry.retired_at or 0) + grace <= t:
            continue   # not yet published (a rotation cut short), or past the grace window
        else:
            retired = entry.retired_at
        out.append(TransportKey(private.device_id, entry.serial, entry.secret, entry.public,
                                retired))
    return out


def rotate(ids: Identities, fp: str, seed: bytes, current: keys.PrivateKey,
           password: str) -> int:
    """Seal ``seed`` under ``password`` with a new transport key (serial: the highest held
    + 1) and publish it; return the serial. The caller holds ``fp``'s lock.

    Step 1 writes the key file (the published key, marked retired now, previous keys
    still in their grace window, the new key); step 2 the ``.pub`` and its group
    copies. A crash between them leaves the published key current and the new one
    unused. :class:`CorruptFile` as :func:`published`.
    """
    now = time.time()
    current_serial = published(ids, fp, current).serial
    serial = current.newest().serial + 1   # never reuse a serial, even an unpublished one
    grace = ids.dd.settings["transport_grace_seconds"]
    kept = [keys.StoredTransport(e.serial, e.secret,
                                 now if e.serial == current_serial else e.retired_at)
            for e in current.transports
            if e.serial == current_serial
            or (e.serial < current_serial and (e.retired_at or 0) + grace > now)]
    kept = kept[-(keyfile.MAX_TRANSPORT_KEYS - 1):]
    new = keys.StoredTransport(serial, crypto.new_transport_secret())
    ops, mem = keys.kdf_cost(ids.dd.settings)
    old_ops, old_mem = int(current.kdf["opslimit"]), int(current.kdf["memlimit"])
    private = current.reseal(seed, password, max(ops, old_ops), max(mem, old_mem), (*kept, new))
    write_atomic(ids.private_path(fp), private.to_bytes(), mode=0o600)          # step 1
    pub = keys.with_device(seed, ids.public_key(fp, touch=False),
                           keys.DeviceCert(current.device_id, serial, new.public))
    write_pub(ids, fp, pub)                                                      # step 2
    return serial


def retire(ids: Identities, fp: str, seed: bytes, device_id: str) -> int:
    """Retire another node (device) of the own ``fp``, one lost or stolen: certify for
    ``device_id`` the serial :data:`keys.RETIRED_SERIAL` with an X25519 key whose secret is
    derived from the identity seed and thrown away, and publish it; return that serial.
    The caller holds ``fp``'s lock.

    The highest serial replaces any certificate the device itself reached by rotating,
    even rotations this node never heard of (a contact that learnt a newer one from the
    device would otherwise keep it, or refuse the retire as a same-serial conflict), and
    the certificate is the same bytes whichever node of the identity makes it (Ed25519 is
    deterministic), so retiring from two nodes never conflicts; retiring again changes
    nothing. Contacts and the identity's other nodes merge it (protocol.md, "Retiring
    another node of the identity") at their next exchange with a node of the identity;
    after that the device's transport key authenticates nowhere. :class:`BadInput` for a
    malformed device id or this node's own device (rotate that one instead),
    :class:`NotFound` if ``fp``'s ``.pub`` names no such device.
    """
    if not keys.DEVICE_ID_RE.fullmatch(device_id):
        raise BadInput("a device id is 16 lowercase hexadecimal characters", field="device")
    if device_id == ids.private_key(fp).device_id:
        raise BadInput("this is this node's own device: rotate its transport key instead",
                       field="device")
    pub = ids.public_key(fp, touch=False)
    if pub.device(device_id) is None:
        raise NotFound(f"the key document of {fp} names no device {device_id}",
                       field="device")
    secret = crypto.hmac_blake2b(seed, _RETIRED + device_id.encode("ascii"))[:32]
    retired = keys.with_device(seed, pub, keys.DeviceCert(
        device_id, keys.RETIRED_SERIAL, crypto.x25519_public(secret)))  # the secret is dropped
    if retired != pub:
        write_pub(ids, fp, retired)
    return keys.RETIRED_SERIAL


_RETIRED = b"diwan/v2/retired-device\x00"


def keep_own_device(fp: str, mine: str, stored: keys.PublicKey, merged: keys.PublicKey
                    ) -> None:
    """:class:`KeyConflict` if ``merged`` (a document merged into the held ``stored``
    ``.pub`` of the own ``fp``) changes this node's device ``mine``: only this node's own
    rotation does that (protocol.md, "Rotation: merging certificates"). When another node
    retired this one, the error says so and what to do."""
    now = merged.device(mine)
    if now is not None and now.serial == keys.RETIRED_SERIAL:
        raise KeyConflict(f"another node of {fp} retired this node's device {mine}; it can "
                          f"no longer act for {fp}: import an identity export to make a new "
                          "node", field="public_key")
    if now != stored.device(mine):
        raise KeyConflict("a key document may not change this node's own device "
                          "certificate", field="public_key")


def write_pub(ids: Identities, fp: str, pub: keys.PublicKey) -> None:
    """Write ``pub`` as ``fp``'s ``.pub``, then over each group's copy of it (atomically)."""
    data = pub.to_bytes()
    write_atomic(ids.pub_path(fp), data)
    for g in ids.groups():
        copy = ids.dir / g / f"{fp}.pub"
        if copy.exists():
            write_atomic(copy, data)
