"""Pulling contacts' feeds: the sync engine the scheduler, the admin API and the CLI share.

For each contact the node asks, as the own identity that follows it (never
another one), ``POST <address>/feeds/<FP>`` with an encrypted request
(:mod:`exchange`) for the posts after a cursor, stores each page through the
one ingest path (durable before the cursor moves) and continues from the
page's last ``(created, sha1)`` until the owner says nothing more remains.

The cursor starts at the newest post held from that contact's feed (kept in
the status; the index's newest post by the author otherwise) minus
``sync_overlap`` seconds, so a post written during the last sync or with a
slightly skewed clock is still fetched; a post already held is a no-op by
SHA-1. Per-contact status (``state/sync_status.json``) records attempts,
successes, errors, posts received and rejected, and the exponential back-off
of failing contacts. :func:`sync_all` runs contacts in parallel (:mod:`.rounds`:
live and failing contacts in separate bounded lanes, a round deadline);
every request has a timeout and a size cap, so one slow, dead or hostile
contact never delays the others.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import requests

from ..base import names
from ..base.datadir import DataDir
from ..base.errors import BadResponse, DiwanError, Forbidden, PeerError
from ..base.fsio import file_lock
from ..identity import keys
from ..identity.identities import Identities
from ..posts.codec import decode_post
from ..posts.ingest import BatchResult, Ingestor
from ..posts.reconcile import open_index
from . import invitestate, peerclient, reach
from .contacts import Contact, Contacts
from .exchange import MAX_TIME, OwnKeys, PendingRequest, build_request, open_response
from .keylookup import KeyLookup, LyingPeers, make_key_lookup
from .rounds import chosen, plan, run_round
from .syncstatus import StatusStore, SyncStatus, backoff, finish_run, is_due, statuses

__all__ = ["StatusStore", "SyncStatus", "backoff", "is_due", "statuses", "sync_all",
           "sync_contact"]

log = logging.getLogger("diwan.sync")

FEED_CONTENT_TYPE = "application/octet-stream"
Position = tuple[int, str]  # (CREATED_TIME, sha1 or "" for "before every post at that time")
Page = tuple[list[bytes], bool]  # the posts of one response and whether more remain
SessionFactory = Callable[[], requests.Session]
Progress = Callable[[SyncStatus], None]


# one run --------------------------------------------------------------------------------

def _position(raw: bytes, accepted: dict[str, int], max_bytes: int) -> Position | None:
    """(created, sha1) of a raw post from the page, if it can be told."""
    sha1 = hashlib.sha1(raw).hexdigest()
    if sha1 in accepted:
        return accepted[sha1], sha1
    try:
        return decode_post(raw, max_bytes=max_bytes).created, sha1
    except (DiwanError, ValueError, TypeError):
        return None


class _Run:
    """One pull of one contact's feed; updates ``status`` as pages arrive."""

    def __init__(self, dd: DataDir, contact: Contact, status: SyncStatus,
                 session: requests.Session, full: bool) -> None:
        self.dd, self.contact, self.status, self.session = dd, contact, status, session
        self.settings = dd.settings
        self.full = full
        self.device: bytes | None = None  # the owner's device key that answered in this run
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

    def owner_key(self, lookup: KeyLookup) -> keys.PublicKey:
        ids, fp = Identities(self.dd), self.contact.fingerprint
        if not ids.exists(fp):
            lookup.fetch(fp)
        return ids.public_key(fp)

    def start(self) -> Position:
        """Where to ask from.

        After a run cut short by ``sync_max_pages``, exactly where it stopped;
        else the newest post held from this feed minus ``sync_overlap``: the
        stored cursor, or the index's newest post by the author when there is
        no status yet. Everything when the following identity changed (it may
        see posts the previous one could not).
        """
        st, me = self.status, self.contact.identity
        if self.full or (st.cursor_identity is not None and st.cursor_identity != me):
            return 0, ""
        if st.resume_time is not None:
            return st.resume_time, st.resume_sha or ""
        newest = st.cursor_time
        if newest is None:
            newest = self.index.newest_time(self.contact.fingerprint)
        if newest is None:
            return 0, ""
        return max(0, newest - self.settings["sync_overlap"]), ""

    def page(self, asker: OwnKeys, owner_key: keys.PublicKey, after: Position) -> Page:
        """One page from ``after``; the owner's node is asked with the device key that
        answered before in this run, else with each certified device key in turn."""
        tried = [self.device] if self.device else [d.transport_public for d in owner_key.devices]
        for n, transport in enumerate(tried):
            answer, pending = self.ask(asker, transport, after)
            if answer.status == 400 and n + 1 < len(tried) and \
                    peerclient.error_code(answer) == "not_authenticated":
                continue  # another device of this identity: try its key
            if answer.status != 200:
                fresh = self.refresh_owner_key(owner_key, answer)
                if fresh is not None:  # a device added since the key was held answers here
                    return self.page(asker, fresh, after)
                raise PeerError(f"{self.address} answered the feed request with "
                                f"{peerclient.describe_error(answer)}")
            response = open_response(answer.body, pending,
                                     max_bytes=self.settings["max_response_bytes"])
            self.device = transport
            self.learn_owner_key(response.owner_pub)
            self.told = self.told or response.addresses
            return list(response.posts), bool(response.more)
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

    def key_from_owner(self, asker: OwnKeys, owner_key: keys.PublicKey, fp: str,
                       session: requests.Session, lookup: KeyLookup) -> bytes | None:
        """The ``.pub`` of ``fp`` (an author reshared in this feed) from the owner's node,
        inside the authenticated exchange; None if it did not send it or failed.

        The document goes to ``lookup.offer_from_exchange``: a wrong key served inside
        the authenticated exchange marks the owner's node as lying."""
        transport = self.device or owner_key.transport_public
        s = self.settings
        try:
            body, pending = build_request(asker=asker, owner_fp=self.contact.fingerprint,
                                          owner_transport=transport, after_time=MAX_TIME,
                                          after_sha=None, limit=1, now=int(time.time()),
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
            Identities(self.dd).update_pub(fp, document)
        except DiwanError as exc:
            raise BadResponse(f"the owner's node sent a key document that cannot be held: "
                              f"{exc.message}") from None

    def ask(self, asker: OwnKeys, transport: bytes, after: Position
            ) -> tuple[peerclient.Answer, PendingRequest]:
        s, fp = self.settings, self.contact.fingerprint
        body, pending = build_request(asker=asker, owner_fp=fp, owner_transport=transport,
                                      after_time=after[0], after_sha=after[1] or None,
                                      limit=s["max_page_size"], now=int(time.time()),
                                      reach=self.reach, **self.hello)
        answer = peerclient.call(self.session, "POST", f"{self.address}/feeds/{fp}",
                                 data=body, content_type=FEED_CONTENT_TYPE,
                                 timeout=s["sync_timeout"], max_bytes=s["max_response_bytes"])
        if answer.status == 400 and self.reach is not None \
                and peerclient.error_code(answer) == "bad_request":
            self.reach = None  # a node older than "reach": ask again without it
            return self.ask(asker, transport, after)
        return answer, pending

    def pull(self) -> None:
        # Key lookups run in this thread while pages are fetched in another: own session,
        # sharing the connection pool of this contact's run only (one own identity; never a
        # session, connection or lookup cache of a run for another own identity). Keys the
        # owner delivers inside the authenticated exchange go to lookup.offer_from_exchange.
        key_session = peerclient.sibling(self.session)
        lookup = make_key_lookup(self.dd, self.contact, session=key_session)
        asker, owner_key = self.asker(), self.owner_key(lookup)

        def key_lookup(fp: str) -> bytes | None:  # the source first, inside the exchange
            return self.key_from_owner(asker, owner_key, fp, key_session, lookup) or lookup(fp)

        ingestor = Ingestor(self.dd, index=self.index, key_lookup=key_lookup)
        try:
            with ThreadPoolExecutor(1, thread_name_prefix="diwan-fetch") as fetcher:
                def fetch(position: Position) -> Future[Page]:
                    return fetcher.submit(self.page, asker, owner_key, position)

                done = reach.anywhere(self.dd, self.contact, self.status,
                                      lambda address: self.at(address, lambda: self.pages(
                                          fetch, ingestor)))
        finally:
            self.index.close()
        if self.told:  # the owner's own word, inside the authenticated exchange
            Contacts(self.dd).learn(self.contact.fingerprint, self.told,
                                    self.settings["max_learned_addresses"])
        if done:
            self.status.resume_time = self.status.resume_sha = None
        else:
            log.info("%s: stopped after %d pages; the next sync continues",
                     self.contact.fingerprint, self.settings["sync_max_pages"])

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

    def pages(self, fetch: Callable[[Position], Future[Page]], ingestor: Ingestor) -> bool:
        """Fetch and store pages until none remain (True) or the page budget is spent.

        The next page is requested, from the last post of the current one,
        while the current one is being verified and stored; if the stored
        page ends elsewhere (a post that could not be read), it is asked again
        from the right place.
        """
        st, budget = self.status, self.settings["sync_max_pages"]
        after = self.start()
        ahead = fetch(after)
        for n in range(1, budget + 1):
            raws, more = ahead.result()
            guess = _position(raws[-1], {}, self.settings["max_post_bytes"]) \
                if raws and more and n < budget else None
            if guess is not None and guess > after:
                ahead = fetch(guess)
            nxt = self.absorb(raws, ingestor.ingest_many(raws, author=self.contact.fingerprint))
            if nxt is None or nxt <= after:
                if more:
                    raise PeerError(f"{self.address} said more posts remain but sent "
                                    "none after the cursor")
                return True
            if not more:
                return True
            after = nxt
            st.resume_time, st.resume_sha = after[0], after[1] or None
            if n < budget and guess != after:
                ahead = fetch(after)
        return False

    def absorb(self, raws: Sequence[bytes], batch: BatchResult) -> Position | None:
        """Count a stored page, move the stored cursor; return the page's last position.

        The page's last position (rejected posts included) is where the next
        page starts; the stored cursor, where the next *sync* starts, moves
        only over accepted posts and never past the time this run started, so
        a post rejected for now (a clock running ahead) is asked for again.
        """
        st = self.status
        new = sum(1 for r in batch.accepted if r.new)
        st.posts_last_run += new
        st.posts_received += new
        st.pages_last_run += 1
        if batch.rejected:
            st.rejected += len(batch.rejected)
            st.rejected_last_run += len(batch.rejected)
            st.last_rejection = str(batch.rejected[-1][1])[:200]
        accepted = {r.sha1: int(r.created) for r in batch.accepted}
        if accepted:
            self.keep_cursor(max((t, sha) for sha, t in accepted.items()))
        positions = [p for p in (_position(raw, accepted, self.settings["max_post_bytes"])
                                 for raw in raws) if p is not None]
        return max(positions) if positions else None

    def keep_cursor(self, last: Position) -> None:
        st = self.status
        started = int(st.last_attempt or 0)
        if last[0] > started:
            last = (started, "")
        held = (st.cursor_time, st.cursor_sha or "") if st.cursor_time is not None else None
        if st.cursor_identity != self.contact.identity or held is None or last > held:
            st.cursor_time, st.cursor_sha = last[0], last[1] or None
            st.cursor_identity = self.contact.identity


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
    contact is not asked (``skipped`` is ``blocked``). ``full`` asks for the whole feed;
    ``clock`` returns unix seconds (``docs/protocol.md``, Peer API and the feed exchange).
    """
    contact = Contacts(dd).get(names.fingerprint(fp))
    if Identities(dd).is_blocked(fp):
        status = StatusStore(dd).get(fp)
        status.skipped = "blocked"
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
        store.save(status, keep=Contacts(dd).fingerprints())
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
            return sync_contact(dd, contact.fingerprint, full=full, session=session, clock=clock)
        except Exception as exc:  # the contact vanished meanwhile, or worse
            log.exception("sync of %s failed", contact.fingerprint)
            status = StatusStore(dd).get(contact.fingerprint)
            status.last_error = f"{type(exc).__name__}: {exc}"[:200]
            return status
        finally:
            session.close()

    if todo:
        stored = {st.fingerprint: st for st in StatusStore(dd).all().values()}
        results.update(run_round(todo, stored, dd.settings, one, progress=progress,
                                  deadline=not force))
    return [results[c.fingerprint] for c in contacts]
