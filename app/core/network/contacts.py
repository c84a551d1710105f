"""The address book: whose feeds this node pulls, from where, and as which own identity.

``state/contacts.json`` maps a contact's fingerprint to its node addresses
and the own identity that follows it::

    {"<contact FP>": {"addresses": ["http://host:8889"], "identity": "<own FP>",
                      "added": 1700000000.0, "learned": ["http://10.0.0.7:8889"]}}

``addresses`` are the hand-set ones (one by hand, or an invite's); ``learned``
(optional: older files have none) are those the contact's own node told this
one inside the authenticated exchange, or that LAN discovery found and an
exchange confirmed, newest first, at most ``max_learned_addresses``. A learned
address never removes a hand-set one. Which address answered last, and each
address's back-off, live in the sync status (:mod:`.reach`). A contact is only
ever asked as the identity that follows it, so the requests the node sends
never link a user's separate identities.
"""

from __future__ import annotations

import builtins
import ipaddress
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ..base import names
from ..base.datadir import DataDir
from ..base.errors import BadInput, Conflict, CorruptFile, NotFound
from ..base.statefile import StateFile
from ..identity.identities import Identities

MAX_ADDRESS_CHARS = 300
DEFAULT_PORTS = {"http": 80, "https": 443}
_LABEL_RE = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")


@dataclass(frozen=True)
class Contact:
    """One followed feed: the contact's ``fingerprint`` (64 hex), its node ``addresses``
    (``scheme://host:port``, one today), the own ``identity`` (64 hex) that follows it and
    when it was ``added`` (unix seconds)."""

    fingerprint: str
    addresses: tuple[str, ...]
    identity: str
    added: float
    learned: tuple[str, ...] = ()

    @property
    def address(self) -> str:
        """The hand-set address: the first of :attr:`addresses`."""
        return self.addresses[0]

    @property
    def every_address(self) -> tuple[str, ...]:
        """The hand-set addresses, then the learned ones not among them."""
        return self.addresses + tuple(a for a in self.learned if a not in self.addresses)

    def to_dict(self) -> dict[str, Any]:
        """``{"fingerprint", "address", "addresses", "learned", "identity", "added"}``."""
        return {"fingerprint": self.fingerprint, "address": self.address,
                "addresses": list(self.addresses), "learned": list(self.learned),
                "identity": self.identity, "added": self.added}


def _host(hostname: str) -> str:
    try:
        ip = ipaddress.ip_address(hostname)
    except ValueError:
        labels = hostname.rstrip(".").split(".")
        if len(hostname) > 253 or not all(_LABEL_RE.fullmatch(x) for x in labels):
            raise BadInput("the address has no valid host name", field="address") from None
        return ".".join(labels)
    return f"[{ip.compressed}]" if ip.version == 6 else ip.compressed


def normalise_address(value: object) -> str:
    """Check a node address and return it as ``scheme://host:port``.

    Only ``http``/``https``, a host name or IP address and a port (the scheme's
    default if left out); no user name or password, path, query or fragment; at
    most 300 characters. Host names are lower-cased, IPv6 addresses bracketed and
    compressed. Raises :class:`BadInput` (``field`` ``address``) for anything else.
    """
    if not isinstance(value, str) or not value or len(value) > MAX_ADDRESS_CHARS:
        raise BadInput(f"an address is 1-{MAX_ADDRESS_CHARS} characters", field="address")
    if not value.isascii() or any(ch.isspace() or not ch.isprintable() for ch in value):
        raise BadInput("an address has no spaces or control characters", field="address")
    parts = urlsplit(value.strip())
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise BadInput("an address starts with http:// or https://", field="address")
    if "@" in parts.netloc:
        raise BadInput("an address carries no user name or password", field="address")
    if parts.path not in ("", "/") or parts.query or parts.fragment or value.endswith(("?", "#")):
        raise BadInput("an address has no path, query or fragment: http://host:port",
                       field="address")
    try:
        port = parts.port
        port = DEFAULT_PORTS[scheme] if port is None else port
    except ValueError:
        raise BadInput("the address's port must be a number from 1 to 65535",
                       field="address") from None
    if not parts.hostname or port < 1:
        raise BadInput("an address names a host and a port: http://host:port", field="address")
    return f"{scheme}://{_host(parts.hostname)}:{port}"


def _entry(fp: str, raw: Any) -> Contact:
    try:
        addresses = tuple(normalise_address(a) for a in raw["addresses"])
        identity = names.fingerprint(raw["identity"])
        if not addresses:
            raise ValueError("no address")
        learned = tuple(normalise_address(a) for a in raw.get("learned", []))
        return Contact(names.fingerprint(fp), addresses, identity, float(raw.get("added", 0)),
                       learned)
    except (KeyError, TypeError, ValueError) as exc:
        raise CorruptFile(f"state/contacts.json: bad entry for {fp[:64]!r}: {exc}") from None


class Contacts:
    """The address book of one data directory."""

    def __init__(self, dd: DataDir) -> None:
        self.dd = dd
        self.file = StateFile(dd, "contacts")

    def list(self) -> list[Contact]:
        """Every contact, sorted by fingerprint; :class:`CorruptFile` for a damaged file."""
        return [_entry(fp, raw) for fp, raw in sorted(self.file.read().items())]

    def fingerprints(self) -> set[str]:
        """The contacts' fingerprints; :class:`CorruptFile` if the file is not a JSON object."""
        return set(self.file.read())

    def get(self, fp: str) -> Contact:
        """The contact ``fp``; raises :class:`BadFingerprint`, :class:`NotFound` if it is not
        a contact, and :class:`CorruptFile` for a damaged entry or file."""
        names.fingerprint(fp)
        raw = self.file.read().get(fp)
        if raw is None:
            raise NotFound(f"{fp} is not a contact", field="fingerprint")
        return _entry(fp, raw)

    def find(self, fp: str) -> Contact | None:
        """The contact ``fp`` or None; raises :class:`BadFingerprint` and
        :class:`CorruptFile` as :meth:`get` does."""
        try:
            return self.get(fp)
        except NotFound:
            return None

    def addresses(self) -> builtins.list[str]:
        """Every contact address, each once (for key lookups); :class:`CorruptFile` for a
        damaged file."""
        seen: dict[str, None] = {}
        for contact in self.list():
            seen.update(dict.fromkeys(contact.every_address))
        return list(seen)

    def check_new(self, fp: str, identity: str) -> None:
        """Refuse a contact that cannot be one: own, blocked, or followed by a non-own identity.

        Raises :class:`BadFingerprint` for a bad ``fp`` or ``identity``; :class:`BadInput`
        if ``identity`` is known but not own, :class:`NotFound` if it is unknown;
        :class:`Conflict` if ``fp`` is an own identity or blocked.
        """
        names.fingerprint(fp)
        names.fingerprint(identity, field="identity")
        ids = Identities(self.dd)
        if not ids.is_own(identity):
            if ids.exists(identity):
                raise BadInput(f"{identity} is not one of this node's own identities",
                               field="identity")
            raise NotFound(f"no own identity {identity}", field="identity")
        if ids.is_own(fp):
            raise Conflict("an own identity cannot be a contact", field="fingerprint")
        if ids.is_blocked(fp):
            raise Conflict(f"{fp} is blocked; unblock it first", field="fingerprint")

    def put(self, fp: str, address: str, identity: str, *, more: Sequence[str] = ()
            ) -> tuple[Contact, bool]:
        """Add or replace a contact; return it and whether it is new.

        The caller has checked it with :meth:`check_new` and made sure its key
        is known (see :func:`app.core.network.keylookup.add_contact`). A replaced contact
        keeps its ``added`` time. ``more``: further addresses of the contact's other
        nodes (an invite's), tried in order after ``address``. Raises :class:`BadFingerprint`,
        :class:`BadInput` for a bad address (:func:`normalise_address`) and
        :class:`CorruptFile` for a damaged file.
        """
        names.fingerprint(fp)
        names.fingerprint(identity, field="identity")
        addresses = list(dict.fromkeys(normalise_address(a) for a in (address, *more)))
        with self.file.update() as data:
            old = data.get(fp)
            added = old.get("added", time.time()) if isinstance(old, dict) else time.time()
            data[fp] = {"addresses": addresses, "identity": identity, "added": added}
            learned = old.get("learned") if isinstance(old, dict) else None
            if isinstance(learned, list) and learned:  # the contact's own nodes still
                data[fp]["learned"] = learned
        return _entry(fp, data[fp]), old is None

    def learn(self, fp: str, found: builtins.list[str], limit: int) -> bool:
        """Add addresses the contact ``fp``'s node told (or an exchange confirmed) to its
        learned ones, newest first, keeping at most ``limit``; return whether the file
        changed. Nothing happens for a fingerprint that is not a contact (a stranger
        never gets an entry), for hand-set addresses, or for bad addresses (dropped).
        Raises :class:`BadFingerprint` and :class:`CorruptFile` for a damaged file.
        """
        names.fingerprint(fp)
        good = []
        for address in found:
            try:
                good.append(normalise_address(address))
            except BadInput:
                continue
        current = self.find(fp)
        if current is None or _merged(current, good, limit) == current.learned:
            return False  # the usual case: nothing new, nothing written
        with self.file.update() as data:
            if not isinstance(data.get(fp), dict):
                return False
            data[fp]["learned"] = list(_merged(_entry(fp, data[fp]), good, limit))
        return True

    def remove(self, fp: str) -> None:
        """Stop following ``fp``; raises :class:`BadFingerprint`, :class:`NotFound` if it is
        not a contact, and :class:`CorruptFile` for a damaged file."""
        names.fingerprint(fp)
        with self.file.update() as data:
            if data.pop(fp, None) is None:
                raise NotFound(f"{fp} is not a contact", field="fingerprint")


def _merged(contact: Contact, found: builtins.list[str], limit: int) -> tuple[str, ...]:
    """``found`` (not hand-set) first, then the older learned addresses; at most ``limit``."""
    fresh = [a for a in dict.fromkeys(found) if a not in contact.addresses]
    return tuple((fresh + [a for a in contact.learned if a not in fresh])[:limit])
