"""Fetching a public key by fingerprint from other nodes, and remembering the ones that lie.

When content needs a key this node lacks, it asks ``GET <address>/identities/<FP>``
of the node that gave it the content, then of the other known contacts. The
answer (at most ``key_lookup_max_bytes``) must be a ``.pub`` document that
verifies and whose recomputed fingerprint is the one asked for. A node that
answers with another key, or with a key document whose certificate does not
verify, is a *lying peer*: it is recorded in ``state/lying_peers.json`` (with
when, why and which fingerprint) and never asked again. A mismatched key is
never stored. An answer that is not a key document at all (an error page, an
unrelated web server) is an ordinary failure, not a lie.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any

import requests

from ..base import names
from ..base.datadir import DataDir
from ..base.errors import BadKeyDocument, LyingPeer, NotFound, PeerError
from ..base.statefile import StateFile
from ..identity import keys
from ..identity.identities import Identities
from . import peerclient
from .contacts import Contact, Contacts, normalise_address

log = logging.getLogger("diwan.keylookup")

class LyingPeers:
    """``state/lying_peers.json``: address -> {address, fingerprint, why, when}."""

    def __init__(self, dd: DataDir) -> None:
        self.file = StateFile(dd, "lying_peers")

    def list(self) -> list[dict[str, Any]]:
        """Every recorded lying peer, oldest first; :class:`CorruptFile` for a damaged file."""
        entries = [e for e in self.file.read().values() if isinstance(e, dict)]
        return sorted(entries, key=lambda e: (str(e.get("when", "")), str(e.get("address"))))

    def get(self, address: str) -> dict[str, Any] | None:
        """The record of ``address`` (normalised, as stored) or None; :class:`CorruptFile`."""
        entry = self.file.read().get(address)
        return entry if isinstance(entry, dict) else None

    def record(self, address: str, fp: str, why: str) -> None:
        """Record ``address`` as lying about ``fp`` (logged); the first record of an address
        stays. Raises :class:`CorruptFile` for a damaged file."""
        log.warning("lying peer %s: %s (asked for %s)", address, why, fp)
        with self.file.update() as data:
            data.setdefault(address, {"address": address, "fingerprint": fp, "why": why,
                                      "when": time.time()})

    def forgive(self, address: str) -> None:
        """Take an address off the list (the owner decided it was a mistake).

        Raises :class:`BadInput` for a malformed address, :class:`NotFound` if it is not
        recorded, :class:`CorruptFile` for a damaged file.
        """
        address = normalise_address(address)
        with self.file.update() as data:
            if data.pop(address, None) is None:
                raise NotFound(f"{address} is not recorded as a lying peer", field="address")


class KeyLookup:
    """Ask ``addresses`` in order for missing keys; usable as ``Ingestor(key_lookup=...)``.

    Called with a fingerprint it returns the verified ``.pub`` document (now
    stored) or None. Within one lookup object an address that failed is not
    asked again, a fingerprint nobody had is not asked again, and at most
    ``key_lookup_limit`` fingerprints are looked up at all. Calling it raises no
    lookup failure (those give None), only :class:`CorruptFile` for a damaged
    ``state/lying_peers.json`` (``docs/protocol.md``, Key lookup).
    """

    def __init__(self, dd: DataDir, addresses: Iterable[str], *,
                 session: requests.Session | None = None) -> None:
        self.dd = dd
        self.addresses = list(dict.fromkeys(addresses))
        self.session = session
        self.lying = LyingPeers(dd)
        self.dead: set[str] = set()
        self.misses: set[str] = set()
        self.asked = 0

    def __call__(self, fp: str) -> bytes | None:
        if not isinstance(fp, str) or not names.FINGERPRINT_RE.fullmatch(fp):
            return None
        ids = Identities(self.dd)
        if ids.exists(fp):
            return ids.pub_document(fp)
        if fp in self.misses or ids.is_blocked(fp) \
                or self.asked >= self.dd.settings["key_lookup_limit"]:
            return None
        try:
            self.fetch(fp)
        except (PeerError, NotFound) as exc:
            log.info("no key for %s: %s", fp, exc.message)
            self.misses.add(fp)
            return None
        return ids.pub_document(fp)

    def fetch(self, fp: str) -> str:
        """Fetch, verify and store the key of ``fp``; return ``fp``.

        Raises :class:`BadFingerprint` for a bad ``fp``; :class:`LyingPeer` if a node lied
        or is recorded as lying (and none gave the key), :class:`PeerError` if nodes could
        not be reached or answered oddly, else :class:`NotFound`; :class:`CorruptFile` for a
        damaged lying-peer file (``docs/protocol.md``, Key lookup).
        """
        names.fingerprint(fp)
        self.asked += 1
        errors: list[PeerError] = []
        for address in self.addresses:
            if address in self.dead:
                continue
            entry = self.lying.get(address)
            if entry is not None:
                errors.append(LyingPeer(f"{address} is recorded as a lying peer: {entry['why']}",
                                        field="address"))
                continue
            try:
                if self._ask(address, fp):
                    return fp
            except PeerError as exc:
                errors.append(exc)
        lies = [e for e in errors if isinstance(e, LyingPeer)]
        if lies or errors:
            raise (lies or errors)[-1]
        raise NotFound(f"no node asked knows the key of {fp}", field="fingerprint")

    def _ask(self, address: str, fp: str) -> bool:
        """True if ``address`` gave the right key (stored); False if it does not know it."""
        session = self.session or peerclient.new_session()
        try:
            answer = peerclient.call(session, "GET", f"{address}/identities/{fp}",
                                     timeout=self.dd.settings["sync_timeout"],
                                     max_bytes=self.dd.settings["key_lookup_max_bytes"])
        except PeerError:
            self.dead.add(address)
            raise
        finally:
            if self.session is None:
                session.close()
        if answer.status == 404:
            return False
        if answer.status != 200:
            raise PeerError(f"{address} answered the key lookup with "
                            f"{peerclient.describe_error(answer)}", field="address")
        self._check(address, fp, answer.body)
        Identities(self.dd).import_pub(answer.body, expected_fp=fp)
        return True

    def _check(self, address: str, fp: str, body: bytes) -> None:
        """Raise (and record) unless ``body`` is the verified key of ``fp``."""
        try:
            key = keys.parse_pub(body)
        except BadKeyDocument as exc:
            if not body.startswith(keys.PUB_HEADER.encode("ascii") + b"\n"):
                raise PeerError(f"{address} did not answer with a key document",
                                field="address") from None
            why = f"sent a key document that does not verify ({exc.message})"
            self.lying.record(address, fp, why)
            raise LyingPeer(f"{address} {why}", field="address") from None
        if key.fingerprint != fp:
            why = f"answered a request for {fp} with the key of {key.fingerprint}"
            self.lying.record(address, fp, why)
            raise LyingPeer(f"{address} {why}", field="address")


def fetch_key(dd: DataDir, fp: str, addresses: Iterable[str], *,
              session: requests.Session | None = None) -> str:
    """Fetch the key of ``fp`` from ``addresses`` (in order) unless already known; return ``fp``.

    Raises :class:`BadFingerprint`, and :class:`LyingPeer`, :class:`PeerError`,
    :class:`NotFound` or :class:`CorruptFile` as :meth:`KeyLookup.fetch` does.
    """
    names.fingerprint(fp)
    if Identities(dd).exists(fp):
        return fp
    return KeyLookup(dd, addresses, session=session).fetch(fp)


def add_contact(dd: DataDir, fp: str, address: str, identity: str, *,
                session: requests.Session | None = None) -> tuple[Contact, bool, bool]:
    """Follow ``fp`` at ``address`` as own ``identity``: check, fetch its key if unknown, store.

    Returns ``(contact, created, key_fetched)``. Raises :class:`BadFingerprint`,
    :class:`BadInput`, :class:`NotFound` or :class:`Conflict` from
    :meth:`Contacts.check_new`; :class:`BadInput` for a bad address;
    :class:`LyingPeer` (recorded) when the node answers with another key,
    :class:`PeerError` when it cannot be reached and :class:`NotFound` when it does not
    know the key; nothing is stored then. :class:`CorruptFile` for a damaged state file.
    """
    book = Contacts(dd)
    book.check_new(fp, identity)
    address = normalise_address(address)
    fetched = False
    if not Identities(dd).exists(fp):
        fetch_key(dd, fp, [address], session=session)
        fetched = True
    contact, created = book.put(fp, address, identity)
    return contact, created, fetched


def make_key_lookup(dd: DataDir, source_address: str | None, *,
                    session: requests.Session | None = None) -> KeyLookup:
    """The key lookup for content from ``source_address``: that node first, then the contacts.

    Raises :class:`CorruptFile` for a damaged ``state/contacts.json``.
    """
    first = [source_address] if source_address else []
    return KeyLookup(dd, first + Contacts(dd).addresses(), session=session)
