"""Ingest: the one way a post enters the data directory, for local posting and sync alike.

Every post is verified in a fixed order, one :class:`BadPost` reason per step
(``errors.Reason``; normative in ``docs/protocol.md``):

1. size cap (``max_post_bytes``)          too_large
2. structure: P1.FP.SIG, ASCII, base64url malformed, bad_base64
3. FP is the expected author, with a key  wrong_author, unknown_author
4. signature of P1 by FP                  bad_signature
5. the name is the SHA-1 of the file      wrong_name
6. JSON object, key names, CREATED_TIME   bad_json, bad_key, no_created_time, future_time
7. typed attribute values (reshares       bad_attribute, bad_media, bad_reshare, too_deep
   verified recursively by this pipeline)
8. policy: the author is not blocked      blocked
9. records: shape, author of the target;  bad_record, deleted
   a SHA-1 deleted here is refused (:mod:`.records`; storing only, not :meth:`verify`)

A rejected post writes nothing. An accepted one is written once, content-addressed
(``posts/<FP>/<SHA1>``, mtime CREATED_TIME), durable before the call returns, then
indexed; processes racing on one file are harmless (an atomic, exclusive link).
"""

from __future__ import annotations

import hashlib
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol

from ..base import crypto, names
from ..base.datadir import DataDir
from ..base.errors import BadPost, DiwanError, Reason
from ..base.flush import syncfs_is_cheap
from ..base.fsio import make_durable_dir, make_private_dir, same_file_system, syncfs, write_atomic
from ..identity.identities import Identities
from . import records
from .attributes import Context, check_values
from .authorkeys import AuthorKeys, KeyLookup
from .codec import CREATED, Post, make_post, parse_payload, split_post
from .index import Index
from .ingestresults import BatchResult, Checked, IngestResult, Session
from .repairdue import repair_soon
from .signatures import Ahead, Answers, Prepared, answer, check_ahead, release, taken, tickets
from .storebatch import store, store_names_unflushed

log = logging.getLogger("diwan.ingest")

_PARALLEL_MIN = 64   # batches at least this long verify signatures ahead, on all cores


class PostIndex(Protocol):
    """Where ingest indexes the posts it stored (``index.Index`` or a test double)."""

    def add_many(self, posts: Iterable[Post]) -> int:
        """Index verified, stored ``posts``; return how many were new to the index."""
        ...


def post_path(dd: DataDir, author: str, sha1: str) -> Path:
    """``<data>/posts/<FP>/<SHA1>`` (may not exist), both names checked first.

    Raises :class:`BadFingerprint` for ``author`` and :class:`BadInput` for ``sha1``.
    """
    return dd.posts / names.fingerprint(author, field="author") / names.sha1(sha1)


class Ingestor:
    """Verify and store posts for one data directory.

    ``index``: where stored posts are indexed (None: an :class:`Index` of ``dd`` made
    when first needed). ``key_lookup(fp)`` is asked for the ``.pub`` of an author with no
    key here (a reshared post's author); it is imported only if it matches ``fp``.
    ``now``: unix seconds, or a function returning them, for the future-time check.
    """

    def __init__(self, dd: DataDir, *, index: PostIndex | None = None,
                 key_lookup: KeyLookup | None = None,
                 now: int | Callable[[], float] | None = None) -> None:
        self.dd = dd
        self.identities = Identities(dd)
        self.keys = AuthorKeys(self.identities, key_lookup)
        self._index = index
        self._index_tried = index is not None
        self._now = now
        s = dd.settings
        self.max_bytes: int = s["max_post_bytes"]
        self.max_skew: int = s["max_time_skew"]
        self.max_depth: int = s["max_reshare_depth"]
        self.max_url: int = s["max_url_length"]
        self.processes: int = s["verify_processes"]
        self.ahead_posts: int = s["verify_ahead_posts"]
        self.dirty_per_file: int = s["flush_dirty_per_file"]
        self._folders: dict[str, str | None] = {}  # fp -> its posts folder (None: blocked)

    # public ------------------------------------------------------------------------
    def verify(self, raw: bytes, *, author: str | None = None, name: str | None = None,
               check_blocked: bool = True) -> Post:
        """Every check of ingest without storing anything; return the verified post.

        ``author`` (64 hex): the feed or directory the post came under; ``name``: the file
        name it must have (its SHA-1); ``check_blocked`` off accepts blocked authors.
        Raises :class:`BadPost` with the ``Reason`` of the first failed step
        (``docs/protocol.md``, Acceptance rules). May import a missing author's key
        through ``key_lookup``.
        """
        return self._verify_top(bytes(raw), author, name, self._session(), check_blocked)

    def ingest(self, raw: bytes, *, author: str | None = None,
               name: str | None = None) -> IngestResult:
        """Verify one post and store it durably; ``new`` is False if it was already here.

        ``author`` and ``name`` as for :meth:`verify`. Raises :class:`BadPost` as
        :meth:`verify` does (nothing is written then) and ``OSError`` if the file cannot be
        written. Indexing failures are logged, never raised (reconcile repairs the index).
        """
        session = self._session()
        post = self._verify_top(bytes(raw), author, name, session, True)
        records.screen(self.dd, self.index, [post], strict=True)
        path = self.dd.posts / post.author / post.sha1
        make_durable_dir(path.parent)
        new = write_atomic(path, post.raw, mtime=post.created, exclusive=True)
        self._finish(session, [post])
        return IngestResult(post.sha1, post.author, post.created, new, post)

    def ingest_many(self, raws: Sequence[bytes], *, author: str | None = None,
                    ahead: Ahead | None = None,
                    then: Callable[[], object] | None = None) -> BatchResult:
        """Verify every post, store the valid ones with one flush, index them.

        Rejections do not stop the batch; they are reported by position (no
        :class:`BadPost` escapes). All accepted posts are on disk before this returns.
        ``author`` (64 hex), if given, is the feed every post must be signed by.
        ``ahead``: this batch's checks, started by :meth:`check_ahead` (dropped if they are
        another batch's). ``then()`` is called once while this batch is stored, after its
        posts were verified and its data flushed (:func:`.storebatch.store`): the place to
        start the next batch's checks (:func:`.pipeline.ingest_batches`); an
        ``Exception`` it raises is logged and ignored.
        Raises ``OSError`` if the files cannot be written.
        """
        return self.store_checked(self.check_batch(raws, author=author, ahead=ahead), then)

    def check_batch(self, raws: Sequence[bytes], *, author: str | None = None,
                    ahead: Ahead | None = None) -> Checked:
        """The first half of :meth:`ingest_many` (arguments as there): verify and screen
        every post (rules 1-9), storing nothing. The :class:`Checked` batch must go to
        :meth:`store_checked` or :meth:`store_deferred`, or be ``close``-d."""
        session = self._session()
        result = BatchResult()
        posts: list[Post] = []
        files: list[tuple[str, Answers, int]] = []  # its file written by a helper, maybe
        prepared, upto = taken(ahead, raws, author)
        sent = tickets(prepared.values())
        try:
            if upto < len(raws) and (upto or len(raws) >= _PARALLEL_MIN):
                rest = self._prepare(raws, author, range(upto, len(raws)))
                prepared.update(rest)
                sent += tickets(rest.values())
            for i, raw in enumerate(raws):
                check = prepared.pop(i, None)  # its split post is dropped once verified
                try:
                    post = self._verify_top(bytes(raw), author, None, session, True, check)
                except BadPost as exc:
                    result.rejected.append((i, exc.reason))
                    continue
                posts.append(post)
                if check is not None:  # whether its file was written: read when stored
                    files.append((post.sha1, check[2], check[3]))
            posts, dropped = records.screen(self.dd, self.index, posts)
            if dropped:  # step 9
                where = {hashlib.sha1(bytes(r)).hexdigest(): i for i, r in enumerate(raws)}
                result.refused += [where[p.sha1] for p, w in dropped if w == Reason.DELETED]
                result.rejected += [(where[p.sha1], w) for p, w in dropped
                                    if w != Reason.DELETED]
        except BaseException:
            release(sent)
            raise
        return Checked(session, result, posts, files, sent)

    def store_checked(self, checked: Checked,
                      then: Callable[[], object] | None = None) -> BatchResult:
        """The second half of :meth:`ingest_many`: store and index a :class:`Checked` batch,
        durable when this returns (``then`` as there). Raises ``OSError`` if the files
        cannot be written."""
        session, result, posts = checked.session, checked.result, checked.posts
        try:
            held = checked.held  # the helpers' answers to writing the files, waited for
            early: list[bool] = []  # the rows went in right before the names' syncfs

            def rows_first() -> None:
                early.append(self._add_rows(posts, flushed_later=True))
            written = store(self.dd.posts, posts, held, then,
                            dirty_per_file=self.dirty_per_file,
                            rows_first=rows_first if self._rows_ride_syncfs(posts) else None)
        finally:
            checked.close()  # files written ahead and not named just vanish
        result.accept(posts, written)
        self._finish(session, posts, indexed=any(early))
        return result

    def store_deferred(self, checked: Checked,
                       then: Callable[[], object] | None = None) -> BatchResult | None:
        """:meth:`store_checked` in a group commit (:func:`.pipeline.ingest_batches`,
        :func:`.storebatch.store_names_unflushed`): one ``syncfs`` first, which also
        flushes what the last deferred batch left unflushed, then the names and index rows,
        *not* flushed: the result may be reported only after the next :meth:`flush` or
        deferred store. None, nothing done, for a batch that cannot be deferred: one
        with a post no helper holds, a deletion or edit record, or an index on another
        file system (store it with :meth:`store_checked`). Raises ``OSError`` as
        :meth:`store_checked`; an index failure is logged (the repair adds the rows)."""
        posts = checked.posts
        try:
            held = checked.held  # the helpers' answers to writing the files, waited for
        except BaseException:
            checked.close()  # files written ahead and not named just vanish
            raise
        if not posts or any(p.sha1 not in held for p in posts) \
                or not self._rows_ride_syncfs(posts):
            return None
        indexed: list[bool] = []

        def rows(finish: Callable[[], None]) -> None:  # names first, then the COMMIT
            indexed.append(self._add_rows(posts, flushed_later=True, before_commit=finish))
        try:
            written = store_names_unflushed(self.dd.posts, posts, held, then, rows)
        finally:
            checked.close()
        checked.result.accept(posts, written)
        # rows added again (the first insert failed) are committed before the names' flush
        # too: marked for the rescan and left to that flush, like the first ones
        self._finish(checked.session, posts, indexed=all(indexed), flushed_later=True)
        return checked.result

    def flush(self) -> None:
        """Make durable what :meth:`store_deferred` left unflushed (one ``syncfs`` of the
        posts' file system, which holds the index too). Raises ``OSError``."""
        syncfs(self.dd.posts)

    def check_ahead(self, raws: Sequence[bytes], *, author: str | None = None) -> Ahead:
        """Start checking the signatures of a batch's first ``verify_ahead_posts`` posts
        (and writing their files, unnamed) on the helpers, for the :meth:`ingest_many` of
        the same ``raws`` and ``author``; the caller passes it there or
        :meth:`~.signatures.Ahead.close`-s it. Raises ``OSError`` if an author's folder
        cannot be made (nothing is held then)."""
        upto = min(len(raws), self.ahead_posts)
        return Ahead(raws, author, self._prepare(raws, author, range(upto)), upto)

    # verification ------------------------------------------------------------------
    def _session(self) -> Session:
        now = self._now() if callable(self._now) else self._now
        return Session(int(time.time() if now is None else now))

    def _prepare(self, raws: Sequence[bytes], author: str | None,
                 positions: range) -> dict[int, Prepared]:
        """Split the posts at ``positions`` whose author's key is here and send their
        signatures to be checked on other cores (:func:`.signatures.check_ahead`)."""
        # Helpers write files only when one syncfs will flush them cheaply (base/flush.py):
        # their files are made durable by a syncfs. Else they only check, and the batch
        # writer here fsyncs each file it writes.
        writes = syncfs_is_cheap(max(1, len(positions)), self.dirty_per_file)
        return check_ahead(raws, author, self.max_bytes, self.keys.local, self.processes,
                           self._folder if writes else None, positions)

    def _folder(self, fp: str) -> str | None:
        """``posts/<fp>``, created if missing (once per Ingestor), for helpers to write in;
        None for a blocked author (its posts are refused: no folder is made for them).

        Not flushed here: a helper's file is named only after a ``syncfs`` of the posts'
        file system (:mod:`.storebatch`), which flushes the folder's entry too (an fsync of
        ``posts/`` here cost ~2 ms a new author, on the ingest's critical path)."""
        if fp not in self._folders:
            blocked = self.identities.is_blocked(fp)
            if not blocked:
                make_private_dir(self.dd.posts / fp)
            self._folders[fp] = None if blocked else os.fspath(self.dd.posts / fp)
        return self._folders[fp]

    def _verify_top(self, raw: bytes, author: str | None, name: str | None,
                    session: Session, check_blocked: bool,
                    prepared: Prepared | None = None) -> Post:
        session.pending.clear()
        post = self._verify(raw, author, name, 0, session, check_blocked, prepared)
        session.used |= session.pending
        return post

    def _verify(self, raw: bytes, author: str | None, name: str | None, depth: int,
                session: Session, check_blocked: bool,
                prepared: Prepared | None = None) -> Post:
        parts = split_post(raw, max_bytes=self.max_bytes) if prepared is None else prepared[0]
        if author is not None and parts.author != author:
            raise BadPost(f"the post is signed by {parts.author}, not by {author} whose feed "
                          "it came in", reason=Reason.WRONG_AUTHOR, field="post")
        public = self.keys.get(parts.author, lambda fp: self._is_blocked(fp, session))
        session.pending.add(parts.author)
        if prepared is not None:
            signed = answer(prepared)
        else:
            signed = crypto.verify(public, crypto.CTX_POST, parts.p1, parts.signature)
        if not signed:
            raise BadPost(f"the signature is not {parts.author}'s signature of P1",
                          reason=Reason.BAD_SIGNATURE, field="post")
        sha1 = hashlib.sha1(raw).hexdigest()
        if name is not None and name != sha1:
            raise BadPost(f"the file is named {name[:40]} but its SHA-1 is {sha1}",
                          reason=Reason.WRONG_NAME, field="post")
        attrs = (prepared[1] if prepared is not None and prepared[1] is not None
                 else parse_payload(parts.payload))  # parsed once, ahead, when it could be
        self._check_time(attrs[CREATED], session)
        check_values(attrs, self._context(depth, session, check_blocked))
        if check_blocked and self._is_blocked(parts.author, session):
            raise BadPost(f"{parts.author} is blocked on this node", reason=Reason.BLOCKED,
                          field="post")
        return make_post(parts, attrs, sha1)

    def _check_time(self, created: int, session: Session) -> None:
        if created > session.now + self.max_skew:
            raise BadPost(f"CREATED_TIME {created} is {created - session.now} s in the future; "
                          f"at most {self.max_skew} s is allowed (check the clock)",
                          reason=Reason.FUTURE_TIME, field=CREATED)

    def _context(self, depth: int, session: Session, check_blocked: bool) -> Context:
        ctx = session.contexts.get((depth, check_blocked))  # made once a call, not a post
        if ctx is None:
            def nested(raw: str, inner_depth: int) -> Post:
                return self._verify(raw.encode("ascii"), None, None, inner_depth, session,
                                    check_blocked)
            ctx = Context(self.max_url, depth, self.max_depth, nested)
            session.contexts[depth, check_blocked] = ctx
        return ctx

    def _is_blocked(self, fp: str, session: Session) -> bool:
        blocked = session.blocked.get(fp)
        if blocked is None:
            blocked = session.blocked[fp] = self.identities.is_blocked(fp)
        return blocked

    # storing -----------------------------------------------------------------------
    def _finish(self, session: Session, posts: list[Post], indexed: bool = False,
                flushed_later: bool = False) -> None:
        """Touch the keys that were used, then index (files are durable by now, or
        ``flushed_later`` as :meth:`_add_rows` says) unless ``indexed`` already, then
        remove what deletion records delete."""
        for fp in session.used:
            self.identities.touch(fp)
        doomed = records.doomed(self.index, posts)  # read before the records are indexed
        if not indexed:
            self._add_rows(posts, flushed_later=flushed_later)
        records.remove_files(self.dd, doomed)  # a deletion record's targets go last

    def _add_rows(self, posts: list[Post], *, flushed_later: bool = False,
                  before_commit: Callable[[], None] | None = None) -> bool:
        """Index ``posts``; False (logged, the repair adds them later) if that failed.
        What ``before_commit`` (:meth:`.index.Index.add_many`) raises is raised."""
        failed: list[BaseException] = []

        def guarded() -> None:
            try:
                before_commit()  # type: ignore[misc]
            except BaseException as exc:
                failed.append(exc)
                raise
        options: dict[str, Any] = {"flushed_later": True} if flushed_later else {}
        if before_commit is not None:  # only an Index is given these (_rows_ride_syncfs)
            options["before_commit"] = guarded
        try:
            if self.index is not None and posts:
                self.index.add_many(posts, **options)
            return True
        except (sqlite3.Error, OSError, DiwanError) as exc:  # the index repairs itself
            if failed and exc is failed[0]:
                raise  # storing failed, not indexing
            log.warning("indexing %d posts failed (%s); the next reconcile adds them",
                        len(posts), exc)
            repair_soon(self.dd)
            return False

    def _rows_ride_syncfs(self, posts: list[Post]) -> bool:
        """Whether the batch's index rows may be committed unflushed right before the
        names' ``syncfs``: the index is an :class:`Index` whose file (a link followed:
        SQLite keeps its log beside the real file) is on the posts' file system, and no
        post is a deletion or edit record (whose targets are read before indexing)."""
        index = self.index
        return (isinstance(index, Index) and same_file_system(index.path, self.dd.posts)
                and not any(p.deletes or p.supersedes for p in posts))

    @property
    def index(self) -> PostIndex | None:
        """The index stored posts go to: the one given, else ``Index(dd)`` made on first use."""
        if not self._index_tried:
            self._index_tried = True
            self._index = Index(self.dd)
        return self._index
