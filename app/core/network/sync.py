"""Pulling contacts' feeds: the sync engine the scheduler, the admin API and the CLI share.

For each contact the node asks, as the own identity that follows it (never
another one), ``POST <address>/feeds/<FP>`` with an encrypted request
(:mod:`exchange`) for the posts after its cursor in the owner's storage order,
and stores each page through the one ingest path (durable before the cursor
moves) until the owner says nothing more remains; :mod:`.follow` walks the feed
(cursors per serving node, the summary comparison when there is no usable
cursor). Per-contact status (``state/sync/<FP>.json``) records attempts,
successes, errors, posts received and rejected, the cursors, and the exponential
back-off of failing contacts. :func:`sync_all` runs contacts in parallel
(:mod:`.rounds`: live and failing contacts in separate bounded lanes, a round
deadline); every request has a timeout and a size cap, so one slow, dead or
hostile contact never delays the others.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import requests

from ..base import names
from ..base.datadir import DataDir
from ..base.errors import BadResponse, DiwanError, Forbidden, PeerError
from ..base.fsio import file_lock
from ..identity import keys
from ..identity.identities import Identities
from ..posts.ingest import Ingestor
from ..posts.reconcile import open_index
from . import invitestate, peerclient, reach, syncqueue
from .contacts import Contact, Contacts
from .exchange import (
    MAX_TIME,
    FeedResponse,
    OwnKeys,
    PendingRequest,
    build_request,
    open_response,
)
from .follow import Ask, AskFor, Walk
from .keylookup import KeyLookup, LyingPeers, make_key_lookup
from .rounds import chosen, plan, run_round
from .syncstatus import StatusStore, SyncStatus, backoff, finish_run, is_due, statuses

__all__ = ["StatusStore", "SyncStatus", "backoff", "is_due", "statuses", "sync_all",
           "sync_contact"]

log = logging.getLogger("diwan.sync")

FEED_CONTENT_TYPE = "application/octet-stream"
SessionFactory = Callable[[], requests.Session]
Progress = Callable[[SyncStatus], None]


# one run --------------------------------------------------------------------------------

class _Run:
    """One pull of one contact's feed; updates ``status`` as pages arrive."""

    def __init__(self, dd: DataDir, contact: Contact, status: SyncStatus,
                 session: requests.Session, full: bool) -> None:
        self.dd, self.contact, self.status, self.session = dd, contact, status, session
        self.settings = dd.settings
        self.full = full
        self.device: keys.DeviceCert | None = None  # the owner's device that answered
        self.index = open_index(dd)
        self.address = contact.address  # the address being tried
        self.told: list[str] = []       # the owner's nodes' addresses it sent in this run
        self.reach: list[str] | None = reach.own_reach(dd, time.time())  # told the owner
        self.hello: dict[str, Any] = invitestate.hello(dd, contact)  # an invite's token
        self.refreshed = False  # the owner's key was asked again in this run

    def asker(self) -> OwnKeys:
        ids, me = Identities(self.dd), self.contact.identity
        if not ids.is_own(me):
            raise Forbidden(f"{me}, which follows this contact, is no longer an own identity",
                            field="identity")
        return OwnKeys(fp=me, pub_document=ids.pub_document(me),
                       transport_secret=ids.transport_secret(me))

    def owner_key(self, lookups: Callable[[], tuple[requests.Session, KeyLookup]]
                  ) -> keys.PublicKey:
        ids, fp = Identities(self.dd), self.contact.fingerprint
        if not ids.exists(fp):
            lookups()[1].fetch(fp)
        return ids.public_key(fp)

    def page(self, asker: OwnKeys, owner_key: keys.PublicKey, ask: AskFor) -> FeedResponse:
        """One response to ``ask``; the owner's node is asked with the device key that
        answered before in this run, else with each certified device key in turn, retired
        ones left out (nobody holds their keys); a callable ``ask`` gives each device's own
        request, by device id. :class:`PeerError` if every device is retired."""
        tried = [self.device] if self.device else list(owner_key.live_devices)
        if not tried:
            raise PeerError(f"every device of {owner_key.fingerprint} is retired")
        for n, device in enumerate(tried):
            fields = ask(device.device_id) if callable(ask) else ask
            answer, pending = self.ask(asker, device.transport_public, fields)
            if answer.status == 400 and n + 1 < len(tried) and \
                    peerclient.error_code(answer) == "not_authenticated":
                continue  # another device of this identity: try its key
            if answer.status != 200:
                fresh = self.refresh_owner_key(owner_key, answer)
                if fresh is not None:  # a device added since the key was held answers here
                    return self.page(asker, fresh, ask)
                raise PeerError(f"{self.address} answered the feed request with "
                                f"{peerclient.describe_error(answer)}")
            response = open_response(answer.body, pending,
                                     max_bytes=self.settings["max_response_bytes"])
            self.device = device
            self.learn_owner_key(response.owner_pub)
            self.told = self.told or response.addresses
            return response
        raise PeerError(f"{self.address} answered no device key of {owner_key.fingerprint}")

    def refresh_owner_key(self, held: keys.PublicKey, answer: peerclient.Answer
                          ) -> keys.PublicKey | None:
        """No held device key accepted: the owner's ``.pub`` asked again here by GET (once a
        run), merged by the serial rule; the result if it has devices not tried, else None."""
        if self.device or self.refreshed or peerclient.error_code(answer) != "not_authenticated":
            return None
        self.refreshed, fp = True, held.fingerprint
        try:
            KeyLookup(self.dd, lambda _fp: [self.address], session=self.session).fetch(fp)
        except DiwanError as exc:
            log.info("%s: its key asked again at %s: %s", fp, self.address, exc.message)
        fresh = Identities(self.dd).public_key(fp)
        return fresh if set(fresh.devices) - set(held.devices) else None
    def device_id(self) -> str:
        """The device id of the owner's node that answered in this run."""
        if self.device is None:  # page() sets it before any response is used
            raise PeerError("no device of the owner answered")
        return self.device.device_id

    def key_from_owner(self, asker: OwnKeys, owner_key: keys.PublicKey, fp: str,
                       session: requests.Session, lookup: KeyLookup) -> bytes | None:
        """The ``.pub`` of ``fp`` (an author reshared in this feed) from the owner's node,
        inside the authenticated exchange; None if it did not send it or failed.

        The document goes to ``lookup.offer_from_exchange``: a wrong key served inside
        the authenticated exchange marks the owner's node as lying."""
        device = self.device or next(iter(owner_key.live_devices), None)
        if device is None:
            return None
        transport = device.transport_public
        s = self.settings
        try:
            body, pending = build_request(asker=asker, owner_fp=self.contact.fingerprint,
                                          owner_transport=transport, after=MAX_TIME,
                                          limit=1, now=int(time.time()),
                                          want_keys=[fp])
            answer = peerclient.call(session, "POST",
                                     f"{self.address}/feeds/{self.contact.fingerprint}",
                                     data=body, content_type=FEED_CONTENT_TYPE,
                                     timeout=s["sync_timeout"],
                                     max_bytes=s["max_response_bytes"])
            if answer.status != 200:
                return None
            response = open_response(answer.body, pending, max_bytes=s["max_response_bytes"])
        except DiwanError as exc:
            log.info("key of %s from %s: %s", fp, self.address, exc.message)
            return None
        for document in response.keys:
            lookup.offer_from_exchange(document, fp)  # LyingPeer (recorded) if not fp's key
            return lookup(fp)
        return None

    def learn_owner_key(self, document: bytes) -> None:
        """Store a newer certificate the owner sent in message 2 (a rotated device key)."""
        fp = self.contact.fingerprint
        try:
            keys.parse_pub(document, expected_fp=fp)
            Identities(self.dd).update_pub(fp, document, keep_newer=True)  # stale: kept
        except DiwanError as exc:
            raise BadResponse(f"the owner's node sent a key document that cannot be held: "
                              f"{exc.message}") from None

    def ask(self, asker: OwnKeys, transport: bytes, fields: Ask
            ) -> tuple[peerclient.Answer, PendingRequest]:
        s, fp = self.settings, self.contact.fingerprint
        body, pending = build_request(asker=asker, owner_fp=fp, owner_transport=transport,
                                      epoch=fields.epoch, after=fields.after,
                                      summary=fields.summary, limit=fields.limit,
                                      now=int(time.time()), reach=self.reach, **self.hello)
        answer = peerclient.call(self.session, "POST", f"{self.address}/feeds/{fp}",
                                 data=body, content_type=FEED_CONTENT_TYPE,
                                 timeout=s["sync_timeout"], max_bytes=s["max_response_bytes"])
        if answer.status == 400 and self.reach is not None \
                and peerclient.error_code(answer) == "bad_request":
            self.reach = None  # a node older than "reach": ask again without it
            return self.ask(asker, transport, fields)
        return answer, pending

    def pull(self) -> None:
        # Key lookups run in this thread while pages are fetched in another: own session,
        # sharing the connection pool of this contact's run only (one own identity; never a
        # session, connection or lookup cache of a run for another own identity). Keys the
        # owner delivers inside the authenticated exchange go to lookup.offer_from_exchange.
        made: list[tuple[requests.Session, KeyLookup]] = []  # made when a key is looked up

        def keys_() -> tuple[requests.Session, KeyLookup]:
            if not made:
                key_session = peerclient.sibling(self.session)
                made.append((key_session, make_key_lookup(self.dd, self.contact,
                                                          session=key_session)))
            return made[0]

        asker, owner_key = self.asker(), self.owner_key(keys_)

        def key_lookup(fp: str) -> bytes | None:  # the source first, inside the exchange
            key_session, lookup = keys_()
            return self.key_from_owner(asker, owner_key, fp, key_session, lookup) or lookup(fp)

        ingestor = Ingestor(self.dd, index=self.index, key_lookup=key_lookup)
        pool: list[ThreadPoolExecutor] = []  # made when a page is first fetched ahead

        def fetch(ask: AskFor, background: bool) -> Future[FeedResponse]:
            if background:
                if not pool:
                    pool.append(ThreadPoolExecutor(1, thread_name_prefix="diwan-fetch"))
                return pool[0].submit(self.page, asker, owner_key, ask)
            done: Future[FeedResponse] = Future()
            try:
                done.set_result(self.page(asker, owner_key, ask))
            except BaseException as exc:
                done.set_exception(exc)
            return done

        try:
            done = reach.anywhere(self.dd, self.contact, self.status,
                                  lambda address: self.at(address, lambda: self.walk(
                                      fetch, ingestor).run()))
        finally:
            for executor in pool:
                executor.shutdown()
            self.index.close()
        if self.told:  # the owner's own word, inside the authenticated exchange
            Contacts(self.dd).learn(self.contact.fingerprint, self.told,
                                    self.settings["max_learned_addresses"])
        if not done:
            log.info("%s: stopped after %d requests; the next sync continues",
                     self.contact.fingerprint, self.settings["sync_max_pages"])

    def walk(self, fetch: Callable[[AskFor, bool], Future[FeedResponse]],
             ingestor: Ingestor) -> Walk:
        """The walk over this contact's feed at the address being tried (:mod:`.follow`)."""
        return Walk(status=self.status, settings=self.settings, index=self.index,
                    author=self.contact.fingerprint, identity=self.contact.identity,
                    full=self.full, fetch=fetch, ingestor=ingestor, device=self.device_id)

    def at(self, address: str, run: Callable[[], bool]) -> bool:
        """``run`` with ``address`` as the contact's address; its record notes the outcome."""
        lying = LyingPeers(self.dd).get(address)
        if lying is not None:
            raise PeerError(f"{address} is recorded as a lying peer ({lying.get('why')}); "
                            "remove it from the list to sync again")
        self.address, self.device = address, None
        try:
            done = run()
        except (PeerError, BadResponse):
            reach.record(self.status, address, False, time.time(), self.settings)
            raise
        reach.record(self.status, address, True, time.time(), self.settings)
        return done


def _fresh_run(status: SyncStatus, contact: Contact, now: float) -> None:
    status.of_contact(contact)
    reach.prune(status, contact)
    status.last_attempt = now
    status.posts_last_run = status.pages_last_run = status.rejected_last_run = 0
    status.skipped = None


def sync_contact(dd: DataDir, fp: str, *, full: bool = False,
                 session: requests.Session | None = None,
                 clock: Callable[[], float] = time.time) -> SyncStatus:
    """Pull everything new from one contact; record and return its status.

    Failures are recorded in the status (and counted for back-off), not
    raised; only an unknown contact raises :class:`NotFound`, a bad ``fp``
    :class:`BadFingerprint`, and a damaged state file :class:`CorruptFile`. A blocked
    contact is not asked (``skipped`` is ``blocked``). ``full`` compares the whole feed
    with what is held (:mod:`.follow`) and fetches what is missing;
    ``clock`` returns unix seconds (``docs/protocol.md``, Peer API and the feed exchange).
    """
    contact = Contacts(dd).get(names.fingerprint(fp))
    status = _sync_one(dd, contact, full=full, session=session, clock=clock)
    StatusStore(dd).prune(Contacts(dd).fingerprints())
    return status


def _sync_one(dd: DataDir, contact: Contact, *, full: bool,
              session: requests.Session | None, clock: Callable[[], float]) -> SyncStatus:
    """:func:`sync_contact` of a known contact, its status saved (costs O(1) files)."""
    fp = contact.fingerprint
    if Identities(dd).is_blocked(fp):
        status = StatusStore(dd).get(fp)
        status.skipped, status.blocked = "blocked", True
        return status
    with file_lock(dd.locks / f"sync-{fp}.lock"):
        store = StatusStore(dd)
        status = store.get(fp)
        _fresh_run(status, contact, clock())
        own = session or peerclient.new_session()
        error: str | None = None
        try:
            _Run(dd, contact, status, own, full).pull()
        except DiwanError as exc:
            error = exc.message
        except Exception as exc:  # a bug must not stop the other contacts
            log.exception("sync of %s failed", fp)
            error = f"internal error ({type(exc).__name__}); see the log"
        finally:
            if session is None:
                own.close()
        finish_run(dd.settings, status, error, clock)
        store.save(status)
        if error:
            log.info("sync %s: %s", fp, error)
        return status


def sync_all(dd: DataDir, only: Iterable[str] | None = None, force: bool = False, *,
             full: bool = False, progress: Progress | None = None,
             session_factory: SessionFactory | None = None,
             clock: Callable[[], float] = time.time) -> list[SyncStatus]:
    """Sync every contact (or ``only`` these) in parallel; return every status, in order.

    Contacts in back-off are skipped unless ``force``; blocked contacts are
    always skipped. The others run as one round (:func:`.rounds.run_round`):
    live and failing contacts in separate bounded pools, live ones first; unless
    ``force`` (the owner asked), contacts not started before the round's deadline
    are left for the next round (``skipped = "round deadline"``). ``progress`` is
    called (in this thread) with each status as it is known. Nothing a contact
    does raises out of here; ``only`` naming a non-contact raises :class:`NotFound`
    (a bad fingerprint :class:`BadFingerprint`) before anything is asked, and a
    damaged state file :class:`CorruptFile`.
    """
    contacts = chosen(dd, only)
    skipped, todo = plan(dd, contacts, force, clock())
    results = {st.fingerprint: st for st in skipped}
    for st in skipped:
        if progress:
            progress(st)
    factory = session_factory or peerclient.new_session

    def one(contact: Contact) -> SyncStatus:
        session = factory()
        try:
            return _sync_one(dd, contact, full=full, session=session, clock=clock)
        except Exception as exc:  # the contact vanished meanwhile, or worse
            log.exception("sync of %s failed", contact.fingerprint)
            status = StatusStore(dd).get(contact.fingerprint)
            status.last_error = f"{type(exc).__name__}: {exc}"[:200]
            return status
        finally:
            session.close()

    if todo:
        stored = StatusStore(dd).all()
        results.update(run_round(todo, stored, dd.settings, one, progress=progress,
                                  deadline=not force))
        if only is None:
            StatusStore(dd).prune(c.fingerprint for c in contacts)
    return [results[c.fingerprint] for c in contacts]


def run_requested(dd: DataDir, *, session_factory: SessionFactory | None = None
                  ) -> list[SyncStatus]:
    """Sync now every contact with a waiting request (:mod:`.syncqueue`: a newly added
    contact), back-off or not; return their statuses. Requests for fingerprints that are
    no longer contacts are dropped. Raises :class:`CorruptFile` for a damaged contacts file."""
    wanted = set(syncqueue.take(dd)) & Contacts(dd).fingerprints()
    if not wanted:
        return []
    log.info("sync asked for %d contact(s)", len(wanted))
    return sync_all(dd, only=sorted(wanted), force=True, session_factory=session_factory)
