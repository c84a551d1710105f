"""The identity store: own key pairs, others' public keys, groups and the blocked list.

Files (see ``datadir``): ``identities/<FP>.pub``, ``identities/<FP>`` (own
private key, 0600) and ``identities/<group>/<FP>.pub`` copies. Every name that
reaches a path has been checked by :mod:`names` first.

Transport key rotation (``rotate_transport``, ``change_password``) writes the
private key file first, holding the published transport secret and the next
one, then the ``.pub`` that certifies the next one. A crash in between leaves
the published key current and the next one unused (docs/protocol.md, "Rotation").
"""

from __future__ import annotations

import builtins
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..base import crypto, names
from ..base.datadir import DataDir
from ..base.errors import Conflict, Forbidden, NotFound
from ..base.fsio import file_lock, fsync_dir, make_durable_dir, remove_quiet, write_atomic
from . import keys, transport
from .transport import TransportKey as TransportKey


@dataclass
class IdentityInfo:
    """What the node knows of one identity, as listed by the admin API and the CLI.

    ``fingerprint`` (64 hex); ``own`` (a private key is here); ``groups`` (sorted group
    names holding a copy, ``blocked`` included); ``blocked``; ``last_used`` (the ``.pub``
    mtime, seconds since the epoch; None for a blocked identity whose key is gone);
    ``public_key`` (the ``.pub`` document as text, when asked for).
    """

    fingerprint: str
    own: bool
    groups: list[str] = field(default_factory=list)
    blocked: bool = False
    last_used: float | None = None
    public_key: str | None = None


class Identities:
    """The identity store over ``<data dir>/identities`` (``docs/protocol.md``, Key documents).

    Every method that takes a fingerprint or group name validates it first
    (:class:`BadFingerprint`, :class:`BadName`) before it touches a path.
    """

    def __init__(self, dd: DataDir) -> None:
        self.dd = dd
        self.dir = dd.identities

    # paths ---------------------------------------------------------------------
    def pub_path(self, fp: str, group: str | None = None) -> Path:
        """``identities/<fp>.pub``, or its copy in ``identities/<group>/`` (may not exist);
        :class:`BadFingerprint` or :class:`BadName` for a bad ``fp`` or ``group``."""
        names.fingerprint(fp)
        base = self.dir if group is None else self.dir / names.group(group)
        return base / f"{fp}.pub"

    def private_path(self, fp: str) -> Path:
        """``identities/<fp>``, the private key file (may not exist); :class:`BadFingerprint`."""
        return self.dir / names.fingerprint(fp)

    def _lock(self, fp: str):  # type: ignore[no-untyped-def]
        return file_lock(self.dd.locks / f"identity-{names.fingerprint(fp)}.lock")

    def _rekey(self, fp: str, password: str, change: Callable[[bytes, keys.PrivateKey], int]
               ) -> int:
        """``change(seed, private key)`` under ``fp``'s lock, the seed opened with ``password``."""
        with self._lock(fp):
            current = self.private_key(fp)
            return change(current.open_seed(password), current)

    # queries ---------------------------------------------------------------------
    def exists(self, fp: str) -> bool:
        """True if ``fp``'s ``.pub`` document is stored here; :class:`BadFingerprint`."""
        return self.pub_path(fp).exists()

    def is_own(self, fp: str) -> bool:
        """True if ``fp``'s private key file is here; :class:`BadFingerprint`."""
        return self.private_path(fp).exists()

    def is_blocked(self, fp: str) -> bool:
        """True if ``fp`` is in the ``blocked`` group; :class:`BadFingerprint`."""
        return os.path.exists(f"{self.dir}{os.sep}blocked{os.sep}{names.fingerprint(fp)}.pub")

    def pub_bytes(self, fp: str) -> bytes:
        """``identities/<fp>.pub`` unparsed (at most MAX_PUB_BYTES + 1 bytes, read with one
        system call); ``FileNotFoundError``, :class:`BadFingerprint`."""
        fd = os.open(f"{self.dir}{os.sep}{names.fingerprint(fp)}.pub", os.O_RDONLY)
        try:
            return os.read(fd, keys.MAX_PUB_BYTES + 1)
        finally:
            os.close(fd)

    def own_fingerprints(self) -> list[str]:
        """The sorted fingerprints of the node's own identities (private key files here)."""
        return sorted(e.name for e in os.scandir(self.dir)
                      if e.is_file() and names.FINGERPRINT_RE.fullmatch(e.name))

    def all_fingerprints(self) -> list[str]:
        """The sorted fingerprints of every ``.pub`` document stored, own ones included."""
        return sorted(e.name[:-4] for e in os.scandir(self.dir)
                      if e.name.endswith(".pub") and names.FINGERPRINT_RE.fullmatch(e.name[:-4]))

    def public_key(self, fp: str, *, touch: bool = True) -> keys.PublicKey:
        """The verified public key of ``fp``, recording its use (mtime) unless ``touch`` is off.

        Raises :class:`BadFingerprint`, :class:`NotFound` if no ``.pub`` is stored for it,
        and :class:`BadKeyDocument` if the stored document no longer verifies.
        """
        path = self.pub_path(fp)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise NotFound(f"unknown identity {fp}", field="fingerprint") from None
        key = keys.parse_pub(data, expected_fp=fp)
        if touch:
            self.touch(fp)
        return key

    def pub_document(self, fp: str) -> bytes:
        """``fp``'s verified ``.pub`` document, without recording a use.

        Raises :class:`BadFingerprint`, :class:`NotFound` and :class:`BadKeyDocument` as
        :meth:`public_key` does.
        """
        return self.public_key(fp, touch=False).to_bytes()

    def touch(self, fp: str) -> None:
        """Record that ``fp`` was used (the ``.pub`` mtime, now), for clean-up.

        Nothing happens for an unknown ``fp``; a bad one raises :class:`BadFingerprint`.
        """
        try:
            os.utime(self.pub_path(fp))
        except FileNotFoundError:
            pass

    def info(self, fp: str, *, with_key: bool = False) -> IdentityInfo:
        """What is known of ``fp`` (with its ``.pub`` text if ``with_key``).

        A blocked identity whose key is gone is still described. Raises
        :class:`BadFingerprint`, :class:`NotFound` if ``fp`` is neither stored nor blocked,
        and with ``with_key`` :class:`BadKeyDocument` if the stored document does not verify.
        """
        path = self.pub_path(fp)
        try:
            st = path.stat()
        except FileNotFoundError:
            if self.is_blocked(fp):
                return IdentityInfo(fp, False, [names.BLOCKED], True, None)
            raise NotFound(f"unknown identity {fp}", field="fingerprint") from None
        groups = [g for g in self.groups() if (self.dir / g / f"{fp}.pub").exists()]
        doc = self.pub_document(fp).decode("ascii") if with_key else None
        return IdentityInfo(fp, self.is_own(fp), groups, names.BLOCKED in groups,
                            st.st_mtime, doc)

    def list(self) -> list[IdentityInfo]:
        """Every identity stored or blocked, sorted by fingerprint.

        Raises :class:`NotFound` only if an identity is deleted while the list is made.
        """
        fps = set(self.all_fingerprints()) | set(self.members(names.BLOCKED))
        return [self.info(fp) for fp in sorted(fps)]

    # own identities -------------------------------------------------------------
    def create(self, password: str) -> str:
        """Make a new own identity sealed by ``password``; return its fingerprint (64 hex).

        Writes ``identities/<FP>`` (0600), then ``identities/<FP>.pub``, with the Argon2id
        settings ``kdf_opslimit`` / ``kdf_memlimit`` (or the minimum under the insecure-KDF
        switch) (``docs/protocol.md``, Key documents). This node becomes the identity's
        first device: a random device id, transport key serial 1. Raises :class:`BadInput`
        for a password not 12..1024 characters of Unicode text.
        """
        keys.check_password(password)
        seed = crypto.new_signing_seed()
        first = keys.StoredTransport(1, crypto.new_transport_secret())
        device = transport.new_device_id()
        pub = keys.certify(seed, [keys.DeviceCert(device, 1, first.public)])
        private = keys.seal_private_key(seed, device, (first,), password,
                                        *keys.kdf_cost(self.dd.settings))
        fp = pub.fingerprint
        make_durable_dir(self.dir)
        write_atomic(self.private_path(fp), private.to_bytes(), mode=0o600)
        write_atomic(self.pub_path(fp), pub.to_bytes())
        return fp

    def private_key(self, fp: str) -> keys.PrivateKey:
        """The parsed (still sealed) private key file of the own identity ``fp``.

        Raises :class:`BadFingerprint`; :class:`Forbidden` if ``fp`` is known but not an own
        identity; :class:`NotFound` if unknown; :class:`CorruptFile` if the file is damaged.
        """
        try:
            data = self.private_path(fp).read_bytes()
        except FileNotFoundError:
            if self.exists(fp):
                raise Forbidden(f"{fp} is not one of this node's own identities",
                                field="fingerprint") from None
            raise NotFound(f"unknown identity {fp}", field="fingerprint") from None
        return keys.parse_private(data)

    def open_seed(self, fp: str, password: str) -> bytes:
        """The 32-byte Ed25519 seed of the own identity ``fp``, recording its use.

        Raises what :meth:`private_key` raises (:class:`BadFingerprint`, :class:`Forbidden`,
        :class:`NotFound`, :class:`CorruptFile`), and :class:`WrongPassword` or
        :class:`BadInput` as :meth:`keys.PrivateKey.open_seed` does.
        """
        seed = self.private_key(fp).open_seed(password)
        self.touch(fp)
        return seed

    def device_id(self, fp: str) -> str:
        """This node's device id for the own identity ``fp``."""
        return self.private_key(fp).device_id

    def transport_keys(self, fp: str, *, now: float | None = None) -> builtins.list[TransportKey]:
        """This node's usable transport keys for the own identity ``fp``, current first.

        The current key is the one the ``.pub`` certifies for this device
        (``retired_at`` None); then previous keys rotated out less than
        ``transport_grace_seconds`` ago, newest first. A key written for a
        rotation that has not reached the ``.pub`` yet is not listed.
        """
        return transport.usable_keys(self, fp, now)

    def transport_secret(self, fp: str) -> bytes:
        """The current 32-byte X25519 transport secret of an own identity (readable
        unattended): the one the ``.pub`` certifies for this node's device.

        Raises :class:`BadFingerprint`, :class:`Forbidden`, :class:`NotFound` or
        :class:`CorruptFile` as :meth:`private_key` does, and :class:`CorruptFile` if the
        ``.pub`` certifies no transport key this node holds.
        """
        return transport.published(self, fp, self.private_key(fp)).secret

    def sign(self, fp: str, password: str, content: bytes) -> bytes:
        """The 64-byte user signature of ``content`` by the own ``fp``: Ed25519 over
        ``CTX_USER_SIGNATURE || content`` (``docs/protocol.md``, Key documents: Signatures),
        never usable as a post or a certificate.

        Raises what :meth:`open_seed` raises: :class:`BadFingerprint`, :class:`Forbidden`,
        :class:`NotFound`, :class:`CorruptFile`, :class:`WrongPassword`, :class:`BadInput`.
        """
        return crypto.sign(self.open_seed(fp, password), crypto.CTX_USER_SIGNATURE, content)

    def rotate_transport(self, fp: str, password: str) -> int:
        """Give this node a new transport key for the own ``fp`` (serial + 1); return the serial.

        The previous key stays usable for ``transport_grace_seconds`` (``docs/protocol.md``,
        Rotation). Raises what :meth:`open_seed` raises; nothing changes for a wrong password.
        """
        return self._rekey(fp, password, lambda seed, current: transport.rotate(
            self, fp, seed, current, password))

    def retire_device(self, fp: str, device_id: str, password: str) -> int:
        """Retire another node of the own ``fp`` (lost or stolen; :func:`transport.retire`);
        return its new serial. Raises what :meth:`open_seed` and ``transport.retire`` raise."""
        return self._rekey(fp, password, lambda seed, _: transport.retire(
            self, fp, seed, device_id))

    def change_password(self, fp: str, old: str, new: str) -> None:
        """Re-seal the own identity ``fp`` under ``new`` and rotate its transport key, so
        that a copy of the old key file stops serving as this node after the grace window.

        Fresh salt and nonce; the Argon2id parameters are the larger of the file's and the
        settings', never lowered (``docs/protocol.md``, The private key file). Crash-safe:
        the key file (new password, the published and the new transport secrets) is written
        before the ``.pub``; every intermediate state opens with exactly one of the two
        passwords and serves with a published key. Raises :class:`BadInput` for a ``new``
        not 12..1024 characters (field ``new_password``), then what :meth:`open_seed`
        raises (:class:`WrongPassword` for a wrong ``old``, nothing changed).
        """
        keys.check_password(new, "new_password")
        self._rekey(fp, old, lambda seed, current: transport.rotate(self, fp, seed, current, new))

    # others' keys ----------------------------------------------------------------
    def import_pub(self, document: bytes | str, *, expected_fp: str | None = None) -> str:
        """Verify and store someone's ``.pub`` document; return its fingerprint.

        For a fingerprint already held the document is merged into the held
        one (:func:`keys.merge_pub`: new devices and higher serials only), so no
        upload can swap a key (``docs/protocol.md``, Rotation: merging certificates).
        Raises :class:`BadKeyDocument` as :func:`keys.parse_pub` does (``expected_fp``
        mismatch included) and :class:`KeyConflict` for a downgrade.
        """
        key = keys.parse_pub(document, expected_fp=expected_fp)
        fp = key.fingerprint
        if not write_atomic(self.pub_path(fp), key.to_bytes(), exclusive=True):
            self.update_pub(fp, key.to_bytes())
        return fp

    def update_pub(self, fp: str, document: bytes, *, keep_newer: bool = False) -> bool:
        """Merge ``document`` into the stored ``.pub`` of ``fp``; True if it changed.

        Atomic under the identity's lock. :class:`BadKeyDocument` if it does not
        verify for ``fp``, :class:`NotFound` if no ``.pub`` is held,
        :class:`KeyConflict` for a lower (unless ``keep_newer``: ``keys.merge_pub``) or
        conflicting serial, or for a certificate of this node's own device of an own
        identity (only :meth:`rotate_transport` changes that).
        """
        incoming = keys.parse_pub(document, expected_fp=fp)
        with self._lock(fp):
            stored = self.public_key(fp, touch=False)
            merged = keys.merge_pub(stored, incoming, keep_newer=keep_newer)
            if merged is stored:
                return False
            if self.is_own(fp):
                transport.keep_own_device(fp, self.private_key(fp).device_id, stored, merged)
            transport.write_pub(self, fp, merged)
            return True

    def delete(self, fp: str, password: str | None = None) -> None:
        """Delete an identity's keys and group copies (the blocked entry stays).

        An own identity needs its password; a wrong or missing one raises
        :class:`WrongPassword` (or :class:`BadInput`, :class:`CorruptFile` as
        :meth:`open_seed`), and nothing is deleted. Raises :class:`NotFound` for an unknown
        ``fp`` and :class:`BadFingerprint` for a bad one.
        """
        with self._lock(fp):
            if self.is_own(fp):
                self.private_key(fp).open_seed(password or "")
                remove_quiet(self.private_path(fp))
            elif not self.exists(fp):
                raise NotFound(f"unknown identity {fp}", field="fingerprint")
            for g in self.groups():
                if g != names.BLOCKED:
                    remove_quiet(self.dir / g / f"{fp}.pub")
            remove_quiet(self.pub_path(fp))

    # groups ----------------------------------------------------------------------
    def groups(self) -> builtins.list[str]:  # (``list`` here is the method above)
        """The sorted names of the groups (``blocked`` included)."""
        return sorted(e.name for e in os.scandir(self.dir)
                      if e.is_dir() and names.GROUP_RE.fullmatch(e.name))

    def group_dir(self, name: str, *, must_exist: bool = True) -> Path:
        """``identities/<name>``; raises :class:`BadName`, and :class:`NotFound` if
        ``must_exist`` and there is no such group."""
        path = self.dir / names.group(name)
        if must_exist and not path.is_dir():
            raise NotFound(f"no group named {name}", field="name")
        return path

    def create_group(self, name: str) -> bool:
        """Create the group ``name`` (0700); False if it already exists. :class:`BadName`."""
        path = self.group_dir(name, must_exist=False)
        if path.is_dir():
            return False
        make_durable_dir(path)
        return True

    def delete_group(self, name: str) -> None:
        """Delete the group ``name`` and its copies (the identities themselves stay); raises
        :class:`Forbidden` for ``blocked``, :class:`BadName` and :class:`NotFound`."""
        if name == names.BLOCKED:
            raise Forbidden("the blocked group is reserved; unblock its members instead",
                            field="name")
        path = self.group_dir(name)
        trash = self.dir / f".trash-{name}-{time.time_ns()}"
        os.rename(path, trash)
        fsync_dir(self.dir)
        shutil.rmtree(trash, ignore_errors=True)

    def members(self, name: str) -> builtins.list[str]:
        """The sorted fingerprints in group ``name`` (``blocked`` always exists, maybe empty);
        raises :class:`BadName`, and :class:`NotFound` for an unknown group."""
        path = self.group_dir(name, must_exist=(name != names.BLOCKED))
        if not path.is_dir():
            return []
        return sorted(e.name[:-4] for e in os.scandir(path)
                      if e.name.endswith(".pub") and names.FINGERPRINT_RE.fullmatch(e.name[:-4]))

    def add_member(self, name: str, fp: str) -> bool:
        """Copy ``fp``'s ``.pub`` into group ``name``; False if it was already a member.

        Raises :class:`BadName`, :class:`BadFingerprint`, :class:`NotFound` for an unknown
        group or identity, :class:`Conflict` when blocking an own identity, and
        :class:`BadKeyDocument` if the stored document does not verify.
        """
        path = self.group_dir(name, must_exist=(name != names.BLOCKED))
        if name == names.BLOCKED and self.is_own(fp):
            raise Conflict("you cannot block your own identity", field="fingerprint")
        doc = self.pub_document(fp)
        make_durable_dir(path)
        return write_atomic(path / f"{fp}.pub", doc, exclusive=True)

    def remove_member(self, name: str, fp: str) -> None:
        """Remove ``fp``'s copy from group ``name``; raises :class:`BadName`,
        :class:`BadFingerprint`, and :class:`NotFound` (unknown group, or not a member)."""
        path = self.group_dir(name, must_exist=(name != names.BLOCKED))
        if not remove_quiet(path / f"{names.fingerprint(fp)}.pub"):
            raise NotFound(f"{fp} is not in {name}", field="fingerprint")

    def block(self, fp: str) -> bool:
        """Add ``fp`` to ``blocked``; False if it already was. Raises :class:`BadFingerprint`,
        :class:`NotFound` (unknown), :class:`Conflict` (own) or :class:`BadKeyDocument`."""
        return self.add_member(names.BLOCKED, fp)

    def unblock(self, fp: str) -> None:
        """Remove ``fp`` from ``blocked``; :class:`BadFingerprint`, :class:`NotFound` if not
        blocked."""
        self.remove_member(names.BLOCKED, fp)
