"""Walking one contact's feed in the owner's storage order (docs/protocol.md, "Following a feed").

The follower keeps, per contact, one cursor per serving node (the owner's device
that answered, by device id): ``{"epoch", "after", "identity"}``, the last position
of that node's numbering it holds everything up to, as the own identity that
follows. A sync asks "after position N of epoch E" and stores pages in order
(:meth:`Walk.follow`), the next page requested while the current one is stored and
checked by the helpers while the current one is flushed, named and indexed (one page
ahead, no more). Pages are committed in a group, as :mod:`app.core.posts.pipeline`
does: one ``syncfs`` a page flushes its data and the last page's names and index rows,
and a page's cursor moves only once that flush is done.
``CREATED_TIME`` plays no part: a backdated, imported or restored post has a new
position on the owner's node and arrives like any other.

With no cursor (a first sync of a feed already partly held, another following
identity, a ``full`` sync) or when the owner answers with another epoch (its
index was rebuilt), the follower compares instead (:meth:`Walk.compare`): it asks
for the *summary* (position and 8-byte SHA-1 prefix of every post it may receive),
then fetches only the runs of posts whose prefix it does not hold (again the next
page while this one is stored), and keeps the summary's last position as its
cursor. A follower holding nothing from the feed skips the summary and simply
asks from position 0.

A post refused for a reason that may pass (:data:`TEMPORARY`: a clock ahead, an
author's key not found yet) holds the stored cursor before it, so it is asked
for again next time; the posts after it are stored meanwhile and re-sent then.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..base import names
from ..base.errors import PeerError, Reason
from ..posts.index import Index
from ..posts.ingest import Ingestor
from ..posts.ingestresults import BatchResult
from ..posts.signatures import Ahead
from .exchange import MAX_TIME, FeedResponse
from .syncstatus import SyncStatus

TEMPORARY = frozenset({Reason.FUTURE_TIME, Reason.UNKNOWN_AUTHOR, Reason.BAD_RESHARE})


@dataclass(frozen=True)
class Ask:
    """One request's position fields: after position ``after`` of ``epoch`` (None: no
    position held), posts or only a ``summary``, at most ``limit``."""

    epoch: int | None
    after: int
    summary: bool
    limit: int


AskFor = Ask | Callable[[str], Ask]   # an Ask, or one per device id tried
Move = tuple[str, int, int]           # a cursor move: (device id, epoch, after)
Fetch = Callable[[AskFor, bool], "Future[FeedResponse]"]  # (ask, in the background?)


def stored_cursor(status: SyncStatus, device: str, identity: str) -> tuple[int, int] | None:
    """(epoch, after) stored for the serving node ``device`` as ``identity``; None if there
    is none, it was kept for another following identity, or it is damaged."""
    raw = status.cursors.get(device)
    if not isinstance(raw, dict) or raw.get("identity") != identity:
        return None
    epoch, after = raw.get("epoch"), raw.get("after")
    if type(epoch) is not int or type(after) is not int or not 1 <= epoch <= MAX_TIME \
            or not 0 <= after <= MAX_TIME:
        return None
    return epoch, after


def missing_runs(entries: Sequence[tuple[int, bytes]], held: set[bytes], start: int = 0
                 ) -> list[tuple[int, int]]:
    """The runs of summary ``entries`` (position, prefix) whose prefix is not ``held``, as
    (position just before the run, number of posts): each is one "after" request."""
    runs: list[tuple[int, int]] = []
    before, run_after, count = start, start, 0
    for position, prefix in entries:
        if prefix in held:
            if count:
                runs.append((run_after, count))
                count = 0
        else:
            if not count:
                run_after = before
            count += 1
        before = position
    if count:
        runs.append((run_after, count))
    return runs


def held_prefixes(folder: Path) -> set[bytes]:
    """The SHA-1 prefixes (8 bytes) of the post files in ``folder`` (``posts/<FP>``): the
    files are the truth, whatever the index still lists."""
    try:
        with os.scandir(folder) as entries:
            return {bytes.fromhex(e.name[:16]) for e in entries
                    if names.SHA1_RE.fullmatch(e.name)}
    except (FileNotFoundError, NotADirectoryError):
        return set()


class Walk:
    """One sync's walk over a contact's feed; ``fetch`` sends an :class:`Ask` (on another
    thread when asked to: the next page while this one is stored) and ``device`` tells
    which serving node answered (its device id)."""

    def __init__(self, *, status: SyncStatus, settings: Any, index: Index, author: str,
                 identity: str, full: bool, fetch: Fetch, ingestor: Ingestor,
                 device: Callable[[], str]) -> None:
        self.status, self.settings, self.index = status, settings, index
        self.author, self.identity, self.full = author, identity, full
        self.fetch, self.ingestor, self.device = fetch, ingestor, device
        self.requests = 0
        self.budget = int(settings["sync_max_pages"])
        self.page = min(int(settings["sync_page_size"]), int(settings["max_page_size"]))
        self._holds: bool | None = None
        self._ahead: Ahead | None = None  # the checks of the page fetched ahead, started
        self._dirty = False  # a page stored in the group commit, not flushed yet
        self._unflushed: list[Move] = []  # its cursor moves, made once it is flushed

    # the first request ------------------------------------------------------------------
    def first(self, device: str) -> Ask:
        """What to ask the serving node ``device`` first: after its stored cursor, else the
        summary (posts of this feed already held) or everything from position 0."""
        cursor = None if self.full else stored_cursor(self.status, device, self.identity)
        if cursor is not None:
            return Ask(cursor[0], cursor[1], False, self.page)
        if self._holds is None:
            self._holds = self.full or bool(held_prefixes(self.index.dd.posts / self.author))
        if self._holds:
            return Ask(None, 0, True, self.settings["max_summary_entries"])
        return Ask(None, 0, False, self.page)

    def run(self) -> bool:
        """Walk until nothing remains (True) or ``sync_max_pages`` requests were sent."""
        try:
            return self._run()
        finally:
            try:
                self.settle()  # the last page stored: flushed, then its cursor moves
            finally:
                if self._ahead is not None:  # a page checked ahead and never stored
                    self._ahead.close()
                    self._ahead = None

    def _run(self) -> bool:
        asked: dict[str, Ask] = {}

        def first(device: str) -> Ask:
            asked[device] = self.first(device)
            return asked[device]

        got = [self._get(self.fetch(first, False))]  # handed on, not kept in this frame
        ask = asked[self.device()]
        if ask.summary:
            return self.compare(got.pop())
        if ask.epoch is not None and got[0].epoch != ask.epoch and ask.after > 0:
            return self.compare(None)  # the owner's index was rebuilt: compare sets
        return self.follow(got.pop(), ask)

    def _get(self, future: Future[FeedResponse]) -> FeedResponse:
        self.requests += 1
        return future.result()

    # following the cursor -------------------------------------------------------------------
    def follow(self, response: FeedResponse, ask: Ask) -> bool:
        """Store pages in order from ``response`` (the answer to ``ask``), moving the cursor;
        True when nothing remains. :class:`PeerError` for an owner that says more remains
        but sends nothing (and as :meth:`compare` after an epoch change)."""
        epoch, page = response.epoch, self.page
        keep = True  # the stored cursor moves until a post is refused for a passing reason
        while True:
            ahead = None
            if response.more and response.positions and self.requests < self.budget:
                ahead = self.fetch(Ask(epoch, response.positions[-1], False, page), True)
            more, sent = response.more, bool(response.positions)
            keep = self.store(response, epoch, keep, ahead)
            del response  # nothing of a stored page is kept while the next one is stored
            if not more:
                return True
            if not sent:
                raise PeerError("the owner's node said more posts remain but sent none")
            if ahead is None:
                return False
            response = self._get(ahead)
            if response.epoch != epoch:
                return self.compare(None)

    def store(self, response: FeedResponse, epoch: int | None, keep: bool,
              coming: Future[FeedResponse] | None = None) -> bool:
        """Ingest one page and count it; with an ``epoch``, move the stored cursor over it
        while ``keep``, once the page is durable. Returns whether the cursor may still
        move (no post refused for a passing reason yet); nothing of the page is kept.
        ``coming``: the next page being fetched, checked on the helpers while this page
        is flushed, named and indexed (one page ahead). Pages are committed in a group
        (:meth:`Ingestor.store_deferred`): a page's names and rows are flushed by the next
        page's first ``syncfs`` (or by :meth:`settle`), and its cursor moves only then."""
        ahead, self._ahead = self._ahead, None
        moves: list[Move] = []
        if not response.posts:
            if ahead is not None:
                ahead.close()
            batch = BatchResult()
            if self._dirty:  # a move now would pass the last page, not flushed yet
                moves = self._unflushed
        else:
            then = self._check_next(coming)
            checked = self.ingestor.check_batch(response.posts, author=self.author,
                                                ahead=ahead)
            try:
                deferred = self.ingestor.store_deferred(checked, then)
            except BaseException:  # its flush may have failed: the last page's moves too
                self._forget()
                raise
            if deferred is None:  # stored whole, once the last page is flushed
                try:
                    self.settle()
                except BaseException:
                    checked.close()  # files written ahead and not named just vanish
                    raise
                batch = self.ingestor.store_checked(checked, then)
            else:
                self.apply()  # the last page's moves: flushed by this page's first syncfs
                batch, moves = deferred, self._unflushed
                self._dirty = True
        if epoch is None:
            self.count(batch)
            keep = keep and not any(reason in TEMPORARY for _, reason in batch.rejected)
        else:
            keep = self.absorb(response, batch, epoch, keep, moves)
        if moves is not self._unflushed:  # a deferred page's moves wait for its flush
            for move in moves:
                self._move(*move)
        return keep

    def settle(self) -> None:
        """Flush what the last deferred page left unflushed, then move its cursor
        (``OSError`` if the flush fails: the cursor stays, and those moves are dropped: a
        later ``syncfs`` does not report the failed one's write-back error)."""
        if self._dirty:
            try:
                self.ingestor.flush()
            except BaseException:
                self._forget()
                raise
            self._dirty = False
        self.apply()

    def _forget(self) -> None:
        """Drop the cursor moves of the last deferred page: a flush that was to make it
        durable failed (the next sync fetches it again and finds what was stored)."""
        self._unflushed.clear()
        self._dirty = False

    def apply(self) -> None:
        """Make the cursor moves of the last deferred page (its flush is done)."""
        for move in self._unflushed:
            self._move(*move)
        self._unflushed.clear()

    def _check_next(self, coming: Future[FeedResponse] | None) -> Callable[[], None] | None:
        """What :meth:`store` runs while a page is stored: wait for the page ``coming`` and
        start its checks (:meth:`Ingestor.check_ahead`). A failed fetch starts nothing: its
        error is raised where the page is read."""
        if coming is None:
            return None

        def then() -> None:
            try:
                page = coming.result()
            except Exception:  # raised again by the walk when it reads this page
                return
            if page.posts:
                self._ahead = self.ingestor.check_ahead(page.posts, author=self.author)
        return then

    def absorb(self, response: FeedResponse, batch: BatchResult, epoch: int, keep: bool,
               moves: list[Move] | None = None) -> bool:
        """Count a stored page; move the stored cursor over it while ``keep`` (or add the
        moves to ``moves``, made once the page is durable); return whether it may still
        move (no post refused for a passing reason yet)."""
        self.count(batch)
        refused = dict(batch.rejected)
        for i, position in enumerate(response.positions):
            if not keep:
                break
            if refused.get(i) in TEMPORARY:
                keep = False
            elif moves is None:
                self.keep(epoch, position)
            else:
                moves.append((self.device(), epoch, position))
        return keep

    def count(self, batch: BatchResult) -> None:
        """Add a stored batch to the status's counters."""
        st = self.status
        new = sum(1 for r in batch.accepted if r.new)
        st.posts_last_run += new
        st.posts_received += new
        st.pages_last_run += 1
        if batch.rejected:
            st.rejected += len(batch.rejected)
            st.rejected_last_run += len(batch.rejected)
            st.last_rejection = str(batch.rejected[-1][1])[:200]

    def keep(self, epoch: int, after: int) -> None:
        """Store the cursor of the serving node that answers (every page stored before is
        flushed first)."""
        self.settle()
        self._move(self.device(), epoch, after)

    def _move(self, device: str, epoch: int, after: int) -> None:
        self.status.cursors[device] = {"epoch": epoch, "after": after,
                                       "identity": self.identity}

    # comparing sets ---------------------------------------------------------------------------
    def compare(self, response: FeedResponse | None) -> bool:
        """Fetch the summary (``response``: its first page, if asked already) page by page
        and, before the next summary page, the posts of this page whose SHA-1 prefix is
        not held: a follower holds one summary page at a time, however long the feed
        (or however many pages a hostile owner sends). The cursor moves to each summary
        page's end while every post before it was stored or refused for good. False if
        the request budget ran out. :class:`PeerError` for an owner whose epoch changes
        meanwhile or that says more remains but sends nothing."""
        limit = self.settings["max_summary_entries"]
        if response is None:
            if self.requests >= self.budget:
                return False
            response = self._get(self.fetch(Ask(None, 0, True, limit), False))
        epoch, held = response.epoch, held_prefixes(self.index.dd.posts / self.author)
        start, ok = 0, True
        while True:
            entries, more = list(response.summary), response.more
            del response  # only its entries are needed from here on
            if more and not entries:
                raise PeerError("the owner's node said more posts remain but sent none")
            got = self.fetch_runs(epoch, missing_runs(entries, held, start))
            if got is None:
                return False
            start, ok = entries[-1][0] if entries else start, ok and got
            if ok:
                self.keep(epoch, start)
            if not more:
                return True
            if self.requests >= self.budget:
                return False
            response = self._get(self.fetch(Ask(epoch, start, True, limit), False))
            if response.epoch != epoch:
                raise PeerError("the owner's node changed its epoch during the sync; "
                                "the next sync compares again")

    def fetch_runs(self, epoch: int, runs: Sequence[tuple[int, int]]) -> bool | None:
        """Fetch each run of ``runs`` ((position just before it, number of posts), in order)
        page by page, the next page asked while this one is stored; None if the budget ran
        out first, else whether every post was stored or refused for good.
        :class:`PeerError` if the owner's epoch is no longer ``epoch``."""
        todo, page, ok = deque(runs), self.page, True

        def ask(background: bool) -> Future[FeedResponse] | None:  # the first run's next page
            if not todo or self.requests >= self.budget:
                return None
            after, count = todo[0]
            return self.fetch(Ask(epoch, after, False, min(count, page)), background)

        pending = ask(False)
        while pending is not None:
            response = self._get(pending)
            if response.epoch != epoch:
                raise PeerError("the owner's node changed its epoch during the sync; "
                                "the next sync compares again")
            after, count = todo.popleft()
            if response.positions and count > len(response.positions):
                todo.appendleft((response.positions[-1], count - len(response.positions)))
            pending = ask(True)  # fetched while this page is stored
            ok = self.store(response, None, ok, pending)
            del response
        return None if todo else ok
