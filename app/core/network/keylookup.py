"""Fetching a public key by fingerprint from other nodes; the peers that lied in an exchange.

Implements docs/protocol.md, *Key lookup*. A node serves only its own keys at
``GET /identities/<FP>`` (and uploaded ones in key-server mode), so a lookup
asks a node only for a fingerprint that node is known to host:

* following a contact (:func:`add_contact`): the contact's own key, at the
  address given;
* syncing a contact followed as own identity ``I`` (:func:`make_key_lookup`):
  the contact's own key at the contact's addresses, and the key of another
  contact *of the same* ``I`` at that contact's addresses. Contacts of other own
  identities are never asked and nothing (session, connections, misses) is
  shared with lookups made for another own identity (persona isolation);
* keys of other authors (a reshared post's inner author, a commenter) come
  inside the authenticated feed exchange: the exchange code hands them to
  :meth:`KeyLookup.offer_from_exchange`.

The answer (at most ``key_lookup_max_bytes``) must be a ``.pub`` document that
verifies and whose recomputed fingerprint is the one asked for. A plain GET is
not authenticated (anyone on the path can forge it), so a wrong answer there is
an ordinary error (:class:`PeerError`, nothing stored, nothing recorded, asked
again next time). Only a wrong key served *inside an authenticated exchange*
marks the address as a lying peer (:meth:`LyingPeers.record`), which stops sync
with it until the owner forgives it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NoReturn

import requests

from ..base import names
from ..base.datadir import DataDir
from ..base.errors import BadKeyDocument, Conflict, LyingPeer, NotFound, PeerError
from ..base.statefile import StateFile
from ..identity import keys
from ..identity.identities import Identities
from . import peerclient, syncqueue
from .contacts import Contact, Contacts, normalise_address

log = logging.getLogger("diwan.keylookup")

Route = Callable[[str], Sequence[str]]  # fingerprint -> the addresses that may be asked for it

# Entries written by this rule carry it; entries without it were made by the old rule (one
# wrong answer to an unauthenticated GET) and are ignored, then dropped at the next write.
LIE_RULE = "authenticated-exchange"


def _current(entry: Any) -> bool:
    return isinstance(entry, dict) and entry.get("rule") == LIE_RULE


class LyingPeers:
    """``state/lying_peers.json``: address -> {address, fingerprint, why, when, rule}.

    Only :meth:`record` adds entries, and only the exchange code may call it
    (a wrong key served inside an authenticated exchange). Sync refuses an
    address listed here until the owner forgives it (``DELETE /peers/lying``,
    ``diwan lying-peers``).
    """

    def __init__(self, dd: DataDir) -> None:
        self.file = StateFile(dd, "lying_peers")

    def list(self) -> list[dict[str, Any]]:
        """Current entries, oldest first (old-rule entries are not shown); :class:`CorruptFile`
        for a damaged file."""
        entries = [e for e in self.file.read().values() if _current(e)]
        return sorted(entries, key=lambda e: (str(e.get("when", "")), str(e.get("address"))))

    def get(self, address: str) -> dict[str, Any] | None:
        """The current record of ``address`` (normalised, as stored) or None;
        :class:`CorruptFile` for a damaged file."""
        entry = self.file.read().get(address)
        return entry if _current(entry) else None

    def record(self, address: str, fp: str, why: str) -> None:
        """Mark ``address`` as lying: it served a wrong key for ``fp`` *inside an authenticated
        exchange* (``why`` says how; shown in the sync status and ``GET /peers/lying``).

        Never call this for an unauthenticated answer (a plain GET): anyone on
        the path could forge that one and stop sync with an honest contact.
        The first entry for an address stays. Raises :class:`CorruptFile` for a
        damaged file (``docs/protocol.md``, Key lookup).
        """
        log.warning("lying peer %s: %s (key of %s)", address, why, fp)
        with self.file.update() as data:
            _drop_old(data)
            if not _current(data.get(address)):
                data[address] = {"address": address, "fingerprint": fp, "why": why,
                                 "when": time.time(), "rule": LIE_RULE}

    def forgive(self, address: str) -> None:
        """Take an address off the list (the owner decided it was a mistake).

        Raises :class:`BadInput` for a malformed address, :class:`NotFound` if it is not
        recorded, :class:`CorruptFile` for a damaged file.
        """
        address = normalise_address(address)
        with self.file.update() as data:
            found = _current(data.get(address))
            _drop_old(data)
            if not found:
                raise NotFound(f"{address} is not recorded as a lying peer", field="address")
            del data[address]


def _drop_old(data: dict[str, Any]) -> None:
    for address in [a for a, e in data.items() if not _current(e)]:
        del data[address]


class KeyLookup:
    """Ask the addresses ``route(fp)`` gives for missing keys; an ``Ingestor(key_lookup=...)``.

    Called with a fingerprint it returns the verified ``.pub`` document (now
    stored) or None. Within one lookup object an address that could not be
    reached is not asked again, a fingerprint nobody had is not asked again,
    and at most ``key_lookup_limit`` fingerprints are looked up over the
    network. One object serves one own identity's run: never share it (or its
    session) with a run for another own identity. Calling it raises no lookup
    failure (those give None), only :class:`CorruptFile` for a damaged
    ``state/lying_peers.json`` (``docs/protocol.md``, Key lookup).
    """

    def __init__(self, dd: DataDir, route: Route, *, source: str | None = None,
                 session: requests.Session | None = None) -> None:
        self.dd = dd
        self.route = route
        self.source = source
        self.session = session
        self.lying = LyingPeers(dd)
        self.dead: set[str] = set()
        self.misses: set[str] = set()
        self.delivered: dict[str, bytes] = {}
        self.asked = 0

    def __call__(self, fp: str) -> bytes | None:
        if not isinstance(fp, str) or not names.FINGERPRINT_RE.fullmatch(fp):
            return None
        ids = Identities(self.dd)
        if ids.exists(fp):
            return ids.pub_document(fp)
        if fp in self.misses or ids.is_blocked(fp):
            return None
        if fp in self.delivered:
            ids.import_pub(self.delivered.pop(fp), expected_fp=fp)
            return ids.pub_document(fp)
        if self.asked >= self.dd.settings["key_lookup_limit"]:
            return None
        try:
            self.fetch(fp)
        except (PeerError, NotFound) as exc:
            log.info("no key for %s: %s", fp, exc.message)
            self.misses.add(fp)
            return None
        return ids.pub_document(fp)

    def offer_from_exchange(self, document: bytes, fp: str | None = None) -> str:
        """Hook for the feed exchange: a key the *authenticated* owner delivered in a response.

        ``document`` is a ``.pub`` document, ``fp`` the fingerprint the owner
        said it is for (if it said). It is verified now and kept for this run;
        it is stored only if the ingest of this run needs it. A document that
        does not verify, or is not the key of ``fp``, was served inside an
        authenticated exchange, so the source is recorded with
        :meth:`LyingPeers.record` and :class:`LyingPeer` is raised (or
        :class:`CorruptFile` for a damaged lying-peer file). Returns the
        document's fingerprint. At most ``key_lookup_limit`` documents are kept
        (``docs/protocol.md``, Key lookup, rule 7).
        """
        where = self.source or "the exchange"
        try:
            key = keys.parse_pub(document)
        except BadKeyDocument as exc:
            self._lie(where, fp or "?", f"served a key document that does not verify "
                                        f"({exc.message}) inside an authenticated exchange")
        if fp is not None and key.fingerprint != fp:
            self._lie(where, fp, f"served the key of {key.fingerprint} as the key of {fp} "
                                 "inside an authenticated exchange")
        if len(self.delivered) < self.dd.settings["key_lookup_limit"]:
            self.delivered.setdefault(key.fingerprint, key.to_bytes())
        return key.fingerprint

    def _lie(self, where: str, fp: str, why: str) -> NoReturn:
        if self.source is not None:
            self.lying.record(self.source, fp, why)
        raise LyingPeer(f"{where} {why}", field="address")

    def fetch(self, fp: str) -> str:
        """Fetch, verify and store the key of ``fp`` by plain GET; return ``fp``.

        Raises :class:`BadFingerprint` for a bad ``fp``; :class:`LyingPeer` if every
        address to ask is recorded as lying, :class:`PeerError` if nodes could not be
        reached or answered wrongly (a wrong key included: never recorded as a lie),
        else :class:`NotFound` (also when no address may be asked for ``fp``);
        :class:`CorruptFile` for a damaged lying-peer file (``docs/protocol.md``, Key lookup).
        """
        names.fingerprint(fp)
        addresses = [a for a in self.route(fp) if a not in self.dead]
        if not addresses:
            raise NotFound(f"no node to ask for the key of {fp} (a node serves only its own "
                           "keys; others' keys come inside the exchange)", field="fingerprint")
        self.asked += 1
        errors: list[PeerError] = []
        for address in addresses:
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
        if errors:
            raise errors[-1]
        raise NotFound(f"no node asked knows the key of {fp}", field="fingerprint")

    def _ask(self, address: str, fp: str) -> bool:
        """True if ``address`` gave the right key (stored); False if it does not serve it."""
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
        _check_plain(address, fp, answer.body)
        Identities(self.dd).import_pub(answer.body, expected_fp=fp)
        return True


def _check_plain(address: str, fp: str, body: bytes) -> None:
    """Raise :class:`PeerError` unless ``body`` is the verified key of ``fp``.

    The answer came over an unauthenticated GET: a wrong one is an ordinary,
    retried error, never a reason to record ``address`` as lying.
    """
    again = "not stored; an unauthenticated answer, asked again next time"
    try:
        key = keys.parse_pub(body)
    except BadKeyDocument as exc:
        if not body.startswith(keys.PUB_HEADER.encode("ascii") + b"\n"):
            raise PeerError(f"{address} did not answer with a key document",
                            field="address") from None
        raise PeerError(f"{address} answered the key lookup for {fp} with a key document "
                        f"that does not verify ({exc.message}); {again}",
                        field="address") from None
    if key.fingerprint != fp:
        raise PeerError(f"{address} answered the key lookup for {fp} with the key of "
                        f"{key.fingerprint}; {again}", field="address")


def fetch_key(dd: DataDir, fp: str, addresses: Iterable[str], *,
              session: requests.Session | None = None) -> str:
    """Fetch the key of ``fp`` from ``addresses`` (in order) unless already known; return ``fp``.

    Ask only nodes that host ``fp`` (a node serves only its own keys). Raises
    :class:`BadFingerprint`, and :class:`LyingPeer`, :class:`PeerError`,
    :class:`NotFound` or :class:`CorruptFile` as :meth:`KeyLookup.fetch` does.
    """
    names.fingerprint(fp)
    if Identities(dd).exists(fp):
        return fp
    wanted = list(dict.fromkeys(addresses))
    return KeyLookup(dd, lambda _fp: wanted, session=session).fetch(fp)


def add_contact(dd: DataDir, fp: str, address: str, identity: str, *,
                session: requests.Session | None = None,
                replace: bool = False) -> tuple[Contact, bool, bool]:
    """Follow ``fp`` at ``address`` as own ``identity``: check, fetch its key if unknown, store.

    A new contact, or one whose address or following identity changed, is synced in the
    background at once (:func:`app.core.network.syncqueue.request_sync`: the scheduler
    picks it up within ``sync_request_poll`` seconds; this call does not wait).
    Changing an existing contact's address or following identity needs ``replace``
    (:class:`Conflict` naming what it would replace otherwise), so a mistyped address
    never silently replaces a working one. Returns ``(contact, created, key_fetched)``.
    Raises :class:`BadFingerprint`,
    :class:`BadInput`, :class:`NotFound` or :class:`Conflict` from
    :meth:`Contacts.check_new`; :class:`BadInput` for a bad address;
    :class:`PeerError` when the node cannot be reached or answers with another
    key (not recorded: the answer is unauthenticated; try again) and
    :class:`NotFound` when it does not serve the key; nothing is stored then.
    :class:`CorruptFile` for a damaged state file.
    """
    book = Contacts(dd)
    book.check_new(fp, identity)
    address = normalise_address(address)
    old = book.find(fp)
    if old is not None and not replace and (old.address, old.identity) != (address, identity):
        raise Conflict(f"{fp} is already followed at {old.address} as {old.identity}; "
                       "ask again with replace (CLI: --replace) to change it",
                       field="address")
    fetched = False
    if not Identities(dd).exists(fp):
        fetch_key(dd, fp, [address], session=session)
        fetched = True
    contact, created = book.put(fp, address, identity)
    if old is None or (old.address, old.identity) != (contact.address, contact.identity):
        syncqueue.request_sync(dd, fp)  # the scheduler syncs it within seconds
    return contact, created, fetched


def persona_route(dd: DataDir, contact: Contact) -> Route:
    """Where keys may be asked for while syncing ``contact`` (docs/protocol.md, *Key lookup*).

    The contact's own fingerprint: its addresses. The fingerprint of another
    contact followed by the same own identity: that contact's addresses.
    Anything else: nowhere (it must come inside the exchange). Contacts of
    other own identities are never asked. Raises :class:`CorruptFile` for a
    damaged ``state/contacts.json``.
    """
    found: dict[str, list[str]] = {}

    def route(fp: str) -> list[str]:
        if fp == contact.fingerprint:
            return list(contact.addresses)
        if not found:  # read the address book only when a key is looked up (rare)
            found.update({c.fingerprint: list(c.addresses) for c in Contacts(dd).list()
                          if c.identity == contact.identity})
            found[contact.fingerprint] = list(contact.addresses)
        return found.get(fp, [])

    return route


def make_key_lookup(dd: DataDir, contact: Contact, *,
                    session: requests.Session | None = None) -> KeyLookup:
    """The key lookup of one run syncing ``contact`` as its own identity (:func:`persona_route`).

    ``session`` must belong to this run alone (never one used for another own identity).
    Raises :class:`CorruptFile` for a damaged ``state/contacts.json``.
    """
    return KeyLookup(dd, persona_route(dd, contact), source=contact.address, session=session)
