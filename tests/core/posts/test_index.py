"""app/core/index.py: the SQLite cache over post files (pagination, visibility, repair)."""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.core.base.errors import BadInput
from app.core.base.fsio import file_lock
from app.core.posts import feedorder, reconcile
from app.core.posts.codec import Post
from app.core.posts.index import Index
from app.core.posts.listing import decode_cursor, encode_cursor
from tests.helpers.post_kit import PostKit

CTX = multiprocessing.get_context("fork")
OLD = 1_000_000_000  # an mtime_ns long past: a directory "unchanged since"


class Kit(PostKit):
    """A data directory with deterministic authors (no Argon2: .pub files only)."""

    def drop_in(self, post: Post, name: str | None = None) -> Path:
        """A file written behind the index's back, as another tool might."""
        folder = self.dd.posts / post.author
        folder.mkdir(exist_ok=True)
        path = folder / (name or post.sha1)
        path.write_bytes(post.raw)
        os.utime(path, (post.created, post.created))
        return path

    def age_dirs(self) -> None:
        """Make every post directory look long unchanged (and record it so)."""
        for d in [self.dd.posts, *self.dd.posts.iterdir()]:
            os.utime(d, ns=(OLD, OLD))
        reconcile.reconcile(self.index, force=True)

    def close(self) -> None:
        self.index.close()


@pytest.fixture
def kit(tmp_path: Path) -> Iterator[Kit]:
    k = Kit(tmp_path / "node")
    yield k
    k.close()


def all_pages(index: Index, limit: int, **filters: Any) -> list[str]:
    out: list[str] = []
    cursor = None
    while True:
        page = index.page(limit=limit, cursor=cursor, **filters)
        assert len(page.items) <= limit
        out += [e.sha1 for e in page.items]
        if page.next_cursor is None:
            return out
        cursor = page.next_cursor


def newest_first(posts: list[Post]) -> list[str]:
    return [p.sha1 for p in sorted(posts, key=lambda p: (p.created, p.sha1), reverse=True)]


# --- the timeline page -------------------------------------------------------------------

def test_page_lists_ingested_posts_newest_first_with_their_meaning(kit: Kit) -> None:
    a, b = kit.author(1), kit.author(2)
    public = kit.post(a, 100, TEXT="hello")
    message = kit.post(a, 101, TEXT="psst", TO_FINGERPRINT=b)
    comment = kit.post(b, 102, TEXT="\U0001f44d", REPLY_POSTSHA=public.sha1, TO_FINGERPRINT=a)
    profile = kit.post(b, 103, PROFILENAME="Basant")
    reshare = kit.post(b, 104, TEXT="look", SHARED_POST=public.raw.decode())
    page = kit.index.page(limit=10)
    assert [e.sha1 for e in page.items] == newest_first([public, message, comment, profile,
                                                         reshare])
    assert page.next_cursor is None
    got = {e.sha1: e for e in page.items}
    assert (got[public.sha1].kind, got[public.sha1].public) == ("post", True)
    assert (got[message.sha1].kind, got[message.sha1].public) == ("message", False)
    assert got[comment.sha1].kind == "comment" and got[comment.sha1].is_reaction
    assert got[profile.sha1].kind == "profile" and got[reshare.sha1].reshare
    assert got[public.sha1].author == a and got[public.sha1].created == 100


def test_filters_by_author_and_kind(kit: Kit) -> None:
    a, b, c = kit.author(1), kit.author(2), kit.author(3)
    posts = [kit.post(a, 10, TEXT="a"), kit.post(b, 11, TEXT="b"),
             kit.post(c, 12, TEXT="c", TO_FINGERPRINT=a), kit.post(a, 13, PROFILENAME="A")]
    assert all_pages(kit.index, 1, authors=[a]) == newest_first([posts[0], posts[3]])
    assert all_pages(kit.index, 2, kinds=["message", "profile"]) == newest_first(
        [posts[2], posts[3]])
    assert all_pages(kit.index, 5, authors=[a, c], kinds=["post"]) == [posts[0].sha1]
    assert all_pages(kit.index, 5, authors=[kit.author(9)]) == []


def test_blocked_authors_are_left_out_unless_asked(kit: Kit) -> None:
    a, b = kit.author(1), kit.author(2)
    pa, pb = kit.post(a, 10, TEXT="a"), kit.post(b, 11, TEXT="b")
    blocked = kit.dd.identities / "blocked"
    (blocked / f"{b}.pub").write_bytes((kit.dd.identities / f"{b}.pub").read_bytes())
    assert all_pages(kit.index, 10) == [pa.sha1]
    assert all_pages(kit.index, 10, authors=[a, b]) == [pa.sha1]
    assert all_pages(kit.index, 10, kinds=["post"]) == [pa.sha1]
    assert all_pages(kit.index, 10, exclude_blocked=False) == [pb.sha1, pa.sha1]


def test_page_size_limit_is_enforced_at_the_edge(tmp_path: Path) -> None:
    k = Kit(tmp_path, max_page_size=3)
    a = k.author(1)
    for t in range(5):
        k.post(a, t, TEXT=str(t))
    assert len(k.index.page(limit=3).items) == 3
    for bad in (0, 4, -1, True):
        with pytest.raises(BadInput) as info:
            k.index.page(limit=bad)
        assert info.value.field == "limit"
    k.close()


@pytest.mark.parametrize("cursor", ["", "garbage", encode_cursor(1, "a" * 40)[:-2] + "!!",
                                    "MTAwOnh5eg", "MTAwOjEyMw=="])
def test_bad_cursors_are_refused_naming_the_field(kit: Kit, cursor: str) -> None:
    with pytest.raises(BadInput) as info:
        kit.index.page(limit=5, cursor=cursor)
    assert info.value.field == "cursor"


def test_cursor_round_trip_and_bad_kind(kit: Kit) -> None:
    assert decode_cursor(encode_cursor(-5, "ab" * 20)) == (-5, bytes.fromhex("ab" * 20))
    with pytest.raises(BadInput) as info:
        kit.index.page(limit=5, kinds=["likes"])
    assert info.value.field == "kinds"


@st.composite
def timelines(draw: st.DrawFn) -> tuple[list[tuple[int, int, str]], int, Any, Any]:
    """(author no, created, kind) triples with many ties, a page size and filters."""
    items = draw(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 4),
                                    st.sampled_from(["post", "message", "profile"])),
                          max_size=30))
    limit = draw(st.integers(1, 7))
    authors = draw(st.none() | st.sets(st.integers(0, 3), max_size=3))
    kinds = draw(st.none() | st.sets(st.sampled_from(["post", "message", "profile"]),
                                     max_size=2))
    return items, limit, authors, kinds


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(timelines())
def test_paging_never_skips_or_repeats_posts_sharing_a_timestamp(case: Any) -> None:
    items, limit, author_nos, kinds = case
    with tempfile.TemporaryDirectory() as tmp:
        k = Kit(Path(tmp))
        people = [k.author(n) for n in range(4)]
        posts = []
        for n, (who, created, kind) in enumerate(items):
            extra = {"TO_FINGERPRINT": people[(who + 1) % 4]} if kind == "message" else (
                {"PROFILENAME": f"p{n}"} if kind == "profile" else {})
            posts.append(k.build(people[who], created, TEXT=f"post {n}", **extra))
        for p in posts:
            k.drop_in(p)
        k.index.add_many(posts)
        authors = None if author_nos is None else [people[n] for n in author_nos]
        wanted = [p for p in posts if (authors is None or p.author in authors)
                  and (kinds is None or p.kind in kinds)]
        got = all_pages(k.index, limit, authors=authors, kinds=kinds)
        assert got == newest_first(wanted)
        k.close()


# --- feed visibility (issue 4: who gets what) -----------------------------------------------

def feed_page(index: Index, owner: str, viewer: str, **kw: Any) -> tuple[list[str], bool]:
    found, more = feedorder.feed_page(index, owner, viewer, **kw)
    return [sha for _, sha in found], more


def feed_all(index: Index, owner: str, viewer: str, limit: int,
             comment_viewers: frozenset[str] = frozenset()) -> list[str]:
    out: list[str] = []
    after = 0
    while True:
        found, more = feedorder.feed_page(index, owner, viewer, after=after, limit=limit,
                                          comment_viewers=comment_viewers)
        assert len(found) <= limit
        assert all(p > after for p, _ in found)
        out += [sha for _, sha in found]
        if not more:
            return out
        after = found[-1][0]


@st.composite
def feeds(draw: st.DrawFn) -> Any:
    shapes = st.sampled_from(["public", "addressed", "comment", "public-comment", "profile",
                              "addressed-profile"])
    posts = draw(st.lists(st.tuples(shapes, st.integers(1, 5), st.sets(st.integers(1, 3),
                                                                        min_size=1)),
                          max_size=25))
    return posts, draw(st.integers(1, 6)), draw(st.integers(1, 4)), draw(st.booleans())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(feeds())
def test_a_viewer_gets_exactly_public_posts_plus_those_addressed_to_it(case: Any) -> None:
    shapes, limit, viewer_no, share_comments = case
    with tempfile.TemporaryDirectory() as tmp:
        k = Kit(Path(tmp))
        owner, other = k.author(0), k.author(9)
        people = {n: k.author(n) for n in range(1, 5)}
        viewer = people[viewer_no]
        # parents of the comments: public, private, or not stored here (issue 9: comment
        # sharing covers only comments whose every parent is stored here and public)
        public_parent = k.build(other, 1, TEXT="public parent")
        private_parent = k.build(other, 2, TEXT="private", TO_FINGERPRINT=owner)
        parents = [public_parent.sha1, private_parent.sha1, hashlib.sha1(b"gone").hexdigest()]
        posts, visible = [public_parent, private_parent], []
        for n, (shape, created, to) in enumerate(shapes):
            attrs: dict[str, Any] = {"TEXT": f"n{n}"}
            if shape in ("addressed", "comment", "addressed-profile"):
                attrs.update({f"TO{i}_FINGERPRINT": people[i] for i in to})
            if "comment" in shape:
                attrs["REPLY_POSTSHA"] = parents[n % 3]
            if "profile" in shape:
                attrs["PROFILENAME"] = f"name {n}"
            post = k.build(owner, created, **attrs)
            posts.append(post)
            on_public = post.kind == "comment" and n % 3 == 0
            if (not post.recipients or viewer in post.recipients
                    or (share_comments and on_public)):
                visible.append(post)
        posts.append(k.build(other, 3, TEXT="someone else's"))
        for p in posts:
            k.drop_in(p)
        k.index.add_many(posts)
        sharing = frozenset({viewer}) if share_comments else frozenset({people[4]} - {viewer})
        got = feed_all(k.index, owner, viewer, limit, comment_viewers=sharing)
        assert got == [p.sha1 for p in visible]  # in the order they were stored
        k.close()


def test_feed_page_follows_the_storage_order_strictly_after_the_cursor(kit: Kit) -> None:
    """Positions follow the order the node stored posts in, not CREATED_TIME (issue 9)."""
    a, v = kit.author(1), kit.author(2)
    posts = [kit.post(a, t, TEXT=str(n)) for n, t in enumerate([5, 5, 9, 6, 4])]
    found, more = feedorder.feed_page(kit.index, a, v, after=0, limit=10)
    assert [sha for _, sha in found] == [p.sha1 for p in posts] and not more
    positions = [p for p, _ in found]
    assert positions == sorted(set(positions)) and positions[0] >= time.time_ns() // 1000 - 10**8
    assert feed_page(kit.index, a, v, after=positions[1], limit=2) == (
        [posts[2].sha1, posts[3].sha1], True)
    assert feed_page(kit.index, a, v, after=positions[-1], limit=10) == ([], False)
    assert feed_page(kit.index, kit.author(3), v, after=0, limit=10) == ([], False)
    for bad in (-1, 2**53, True, "1"):
        with pytest.raises(BadInput) as info:
            feedorder.feed_page(kit.index, a, v, after=bad, limit=10)  # type: ignore[arg-type]
        assert info.value.field == "after"
    summary, more = feedorder.feed_summary(kit.index, a, v, after=positions[0], limit=3)
    assert summary == [(p, bytes.fromhex(q.sha1)[:8]) for p, q in zip(positions[1:4],
                                                                       posts[1:4], strict=True)]
    assert more


def test_a_feed_page_looks_only_at_its_own_files(kit: Kit,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """The row past the page only makes ``more`` true: its file is not ``stat``-ed (one
    system call less per page served; a file gone there is found at the next page)."""
    a, v = kit.author(1), kit.author(2)
    posts = [kit.post(a, t, TEXT=str(t)) for t in (1, 2, 3)]
    kit.index.page(limit=1)  # the automatic repair done first (it stats other paths)
    looked: list[str] = []
    real_stat = os.stat
    folder = f"{kit.dd.posts / a}{os.sep}"
    monkeypatch.setattr(feedorder.os, "stat", lambda path, *args, **kw: (
        looked.append(os.fspath(path)[len(folder):]) if os.fspath(path).startswith(folder)
        else None, real_stat(path, *args, **kw))[1])
    found, more = feedorder.feed_files(kit.index, a, v, after=0, limit=2)
    assert [sha for _, sha, _ in found] == [p.sha1 for p in posts[:2]] and more
    assert sorted(looked) == sorted(p.sha1 for p in posts[:2])
    (kit.dd.posts / a / posts[2].sha1).unlink()
    assert feedorder.feed_files(kit.index, a, v, after=found[-1][0], limit=2) == ([], False)


def test_the_epoch_row_is_found_wherever_the_compound_puts_it(kit: Kit) -> None:
    """The page's statement leads with a ``(NULL, epoch)`` row; SQLite sets no order for a
    compound, so one found elsewhere is taken out too, and none means a read of its own."""
    rows = [(7, b"\x01" * 20), (None, 5), (8, b"\x02" * 20)]
    assert feedorder._epoch_of(kit.index, rows) == (5, [rows[0], rows[2]])
    assert feedorder._epoch_of(kit.index, rows[1:2] + rows[:1]) == (5, rows[:1])
    assert feedorder._epoch_of(kit.index, [rows[0]]) == (feedorder.epoch(kit.index), [rows[0]])


def test_positions_never_go_back_and_a_rebuild_changes_the_epoch(kit: Kit) -> None:
    a, v = kit.author(1), kit.author(2)
    first = kit.post(a, 100, TEXT="first")
    epoch = feedorder.epoch(kit.index)
    assert epoch == feedorder.epoch(kit.index) and 1 <= epoch < 2**53
    backdated = kit.post(a, 1, TEXT="written with an old time")
    found = feedorder.feed_page(kit.index, a, v, after=0, limit=10)[0]
    assert [sha for _, sha in found] == [first.sha1, backdated.sha1]
    reconcile.rebuild(kit.index)
    assert feedorder.epoch(kit.index) != epoch
    assert {sha for _, sha in feedorder.feed_page(kit.index, a, v, after=0, limit=10)[0]} == {
        first.sha1, backdated.sha1}


def test_an_index_from_before_positions_gets_them_on_open(tmp_path: Path) -> None:
    k = Kit(tmp_path / "node")
    a, v = k.author(1), k.author(2)
    posts = [k.post(a, t, TEXT=str(t)) for t in (3, 1, 2)]
    c = k.index.conn()
    c.execute("DROP INDEX posts_pos")
    c.execute("ALTER TABLE posts DROP COLUMN pos")
    k.close()
    k2 = Kit(tmp_path / "node")
    k2.author(1)
    found = feedorder.feed_page(k2.index, a, v, after=0, limit=10)[0]
    assert [sha for _, sha in found] == [p.sha1 for p in posts]  # insertion order
    newer = k2.post(a, 0, TEXT="after the migration")
    assert feedorder.feed_page(k2.index, a, v, after=found[-1][0], limit=10)[0][0][1] == \
        newer.sha1
    k2.close()


def test_newest_time_and_remove(kit: Kit) -> None:
    a, b = kit.author(1), kit.author(2)
    assert kit.index.newest_time(a) is None
    old, new = kit.post(a, 10, TEXT="old"), kit.post(a, 20, TEXT="new")
    kit.post(b, 30, TEXT="b")
    assert kit.index.newest_time(a) == 20
    (kit.dd.posts / a / new.sha1).unlink()  # the file goes first: it is the truth
    assert kit.index.remove(new.sha1) and not kit.index.remove(new.sha1)
    assert kit.index.newest_time(a) == 10
    assert kit.index.get(old.sha1) is not None and kit.index.get(new.sha1) is None


def test_a_failed_batch_leaves_no_stale_author_ids(kit: Kit) -> None:
    index = Index(kit.dd)
    a, b = kit.author(1), kit.author(2)
    pa, pb = kit.build(a, 1, TEXT="a"), kit.build(b, 2, TEXT="b")
    for p in (pa, pb):
        kit.drop_in(p)
    with pytest.raises(AttributeError):
        index.add_many([pa, object()])  # type: ignore[list-item]
    assert index.count() == 0
    index.add_many([pb])
    index.add_many([pa])
    assert [(e.sha1, e.author) for e in index.page(limit=5).items] == [
        (pb.sha1, b), (pa.sha1, a)]


# --- repair: files added or removed behind the index's back ---------------------------------

def test_reconcile_indexes_valid_files_dropped_in_and_never_invalid_ones(kit: Kit) -> None:
    a, b = kit.author(1), kit.author(2)
    kit.post(a, 1, TEXT="first")
    kit.age_dirs()
    good = kit.build(a, 2, TEXT="dropped in")
    kit.drop_in(good)
    forged = kit.build(b, 3, TEXT="forged")  # b's text, signed by b, but stored under a
    misplaced = kit.dd.posts / a / forged.sha1
    misplaced.write_bytes(forged.raw)
    wrong_name = kit.build(a, 4, TEXT="misnamed")
    kit.drop_in(wrong_name, name="0" * 40)
    tampered = bytearray(kit.build(a, 5, TEXT="tampered").raw)
    tampered[5] ^= 1
    (kit.dd.posts / a / hashlib.sha1(tampered).hexdigest()).write_bytes(bytes(tampered))
    temp = kit.build(a, 6, TEXT="half written")
    kit.drop_in(temp, name=".tmp-" + temp.sha1 + ".abc")
    report = reconcile.reconcile(kit.index, force=True)
    assert report is not None and report.added == 1 and report.invalid == 3
    assert good.sha1 in all_pages(kit.index, 10)
    assert kit.index.count() == 2


def test_reconcile_rescans_only_changed_directories(kit: Kit) -> None:
    people = [kit.author(n) for n in range(5)]
    for n, fp in enumerate(people):
        kit.post(fp, n, TEXT="x")
    kit.age_dirs()
    report = reconcile.reconcile(kit.index, force=True)
    assert report is not None and report.dirs_scanned == 0
    kit.drop_in(kit.build(people[2], 50, TEXT="new"))
    report = reconcile.reconcile(kit.index, force=True)
    assert report is not None and (report.dirs_scanned, report.added) == (1, 1)


def test_removed_files_and_directories_leave_the_index(kit: Kit) -> None:
    a, b = kit.author(1), kit.author(2)
    pa1, pa2 = kit.post(a, 1, TEXT="1"), kit.post(a, 2, TEXT="2")
    pb = kit.post(b, 3, TEXT="3")
    kit.age_dirs()
    (kit.dd.posts / a / pa1.sha1).unlink()
    for f in (kit.dd.posts / b).iterdir():
        f.unlink()
    (kit.dd.posts / b).rmdir()
    report = reconcile.reconcile(kit.index, force=True)
    assert report is not None and report.removed == 2
    assert kit.index.get(pb.sha1) is None
    assert all_pages(kit.index, 10) == [pa2.sha1]


def test_an_author_directory_replaced_by_a_file_is_forgotten(kit: Kit) -> None:
    a, b = kit.author(1), kit.author(2)
    kit.post(a, 1, TEXT="a")
    kept = kit.post(b, 2, TEXT="b")
    reconcile.reconcile(kit.index, force=True)  # the index now knows a's directory
    folder = kit.dd.posts / a
    for f in folder.iterdir():
        f.unlink()
    folder.rmdir()
    folder.write_bytes(b"not a directory")
    report = reconcile.reconcile(kit.index, force=True)
    assert report is not None and report.removed == 1
    assert all_pages(kit.index, 5) == [kept.sha1]


def test_rows_whose_file_vanished_are_dropped_from_results_at_once(tmp_path: Path) -> None:
    k = Kit(tmp_path, reconcile_interval_ms=3_600_000)
    a = k.author(1)
    posts = [k.post(a, t, TEXT=str(t)) for t in range(6)]
    reconcile.reconcile(k.index, force=True)
    for p in posts[3:5]:
        (k.dd.posts / a / p.sha1).unlink()
    page = k.index.page(limit=3)
    assert [e.sha1 for e in page.items] == [posts[5].sha1, posts[2].sha1, posts[1].sha1]
    assert k.index.count() == 4  # dropped from the index too, with no reconcile
    assert feed_page(k.index, a, k.author(2), after=0, limit=2) == (
        [posts[0].sha1, posts[1].sha1], True)
    k.close()


def test_reconcile_is_throttled_per_process(tmp_path: Path) -> None:
    k = Kit(tmp_path, reconcile_interval_ms=3_600_000)
    a = k.author(1)
    assert reconcile.reconcile(k.index, force=True) is not None
    assert reconcile.reconcile(k.index) is None
    hidden = k.build(a, 1, TEXT="behind the back")
    k.drop_in(hidden)
    assert all_pages(k.index, 5) == []  # not looked for within the interval
    assert reconcile.reconcile(k.index, force=True) is not None
    assert all_pages(k.index, 5) == [hidden.sha1]
    k.close()


def test_a_post_stored_while_the_index_could_not_be_written_is_listed_next(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The post file is durable but its index row failed (a full disk): the next query
    repairs at once, throttle or not (the full-disk integration test met this)."""
    k = Kit(tmp_path, reconcile_interval_ms=3_600_000)
    a = k.author(1)
    first = k.post(a, 1, TEXT="indexed")
    assert all_pages(k.index, 5) == [first.sha1]  # a repair ran: the throttle is on
    real = Index._insert

    def full(*args: Any, **kw: Any) -> int:
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(Index, "_insert", full)
    second = k.post(a, 2, TEXT="stored, not indexed")
    monkeypatch.setattr(Index, "_insert", real)
    assert (k.dd.posts / a / second.sha1).exists()
    assert all_pages(k.index, 5) == [second.sha1, first.sha1]
    k.close()


def test_automatic_repair_verifies_a_bounded_number_of_files_per_query(tmp_path: Path) -> None:
    k = Kit(tmp_path, reconcile_max_verify=2)
    a, b = k.author(1), k.author(2)
    hidden = [k.build(fp, t, TEXT=str(t)) for t, fp in enumerate([a, a, a, b, b])]
    for p in hidden:
        k.drop_in(p)
    seen = [len(all_pages(k.index, 10)) for _ in range(4)]
    assert seen == [2, 4, 5, 5]
    assert all_pages(k.index, 10) == newest_first(hidden)
    k.close()


def test_automatic_repair_skips_while_another_process_repairs(kit: Kit) -> None:
    hidden = kit.build(kit.author(1), 1, TEXT="x")
    kit.drop_in(hidden)
    with file_lock(kit.dd.locks / reconcile.LOCK_NAME):
        assert reconcile.reconcile(kit.index, max_verify=10) is None
        assert all_pages(kit.index, 5) == []
    assert all_pages(kit.index, 5) == [hidden.sha1]


def test_queries_repair_the_index_themselves(kit: Kit) -> None:
    a = kit.author(1)
    hidden = kit.build(a, 1, TEXT="behind the back")
    kit.drop_in(hidden)
    assert all_pages(kit.index, 5) == [hidden.sha1]  # reconcile_interval_ms = 0


def test_rebuild_recreates_the_index_from_files(kit: Kit) -> None:
    a, b = kit.author(1), kit.author(2)
    posts = [kit.post(a, 1, TEXT="1"), kit.post(b, 2, TEXT="2", TO_FINGERPRINT=a),
             kit.post(b, 3, TEXT="3", REPLY_POSTSHA="1" * 40, TO_FINGERPRINT=a)]
    bad = bytearray(kit.build(a, 4, TEXT="bad").raw)
    bad[-3] ^= 2
    (kit.dd.posts / a / hashlib.sha1(bad).hexdigest()).write_bytes(bytes(bad))
    kit.age_dirs()
    before = all_pages(kit.index, 10)
    kit.index.conn().execute("DELETE FROM posts")
    assert all_pages(kit.index, 10) == []  # a damaged cache stays wrong until rebuilt...
    assert reconcile.rebuild(kit.index) == 3
    assert all_pages(kit.index, 10) == before == newest_first(posts)
    assert sorted(feed_page(kit.index, b, a, after=0, limit=5)[0]) == sorted([
        posts[1].sha1, posts[2].sha1])  # a rebuild numbers anew


def test_rebuild_replaces_a_file_that_is_not_a_database(kit: Kit) -> None:
    a = kit.author(1)
    post = kit.post(a, 1, TEXT="1")
    kit.index.close()
    for suffix in ("-wal", "-shm"):
        Path(f"{kit.index.path}{suffix}").unlink(missing_ok=True)
    kit.index.path.write_bytes(b"this is not a database" * 100)
    fresh = reconcile.open_index(kit.dd)
    assert reconcile.rebuild(fresh) == 1
    assert all_pages(fresh, 5) == [post.sha1]
    fresh.close()


def test_a_new_schema_version_starts_an_empty_cache_that_refills(kit: Kit) -> None:
    a = kit.author(1)
    post = kit.post(a, 1, TEXT="1")
    kit.index.conn().execute("PRAGMA user_version=999")
    kit.index.close()
    fresh = reconcile.open_index(kit.dd)
    assert all_pages(fresh, 5) == [post.sha1]
    fresh.close()


def test_the_database_is_in_wal_mode(kit: Kit) -> None:
    kit.index.count()
    with sqlite3.connect(kit.index.path) as c:
        assert c.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    c.close()


# --- several processes at once -----------------------------------------------------------------

def _writer(root: str, n: int, count: int) -> None:
    k = Kit(Path(root))
    fp = k.author(n)
    for i in range(0, count, 10):
        k.ingestor.ingest_many([k.build(fp, 1000 + j, TEXT=f"{n}/{j}").raw
                                for j in range(i, i + 10)])
        k.index.page(limit=20)
    k.close()


def test_several_processes_ingest_and_read_at_once(kit: Kit) -> None:
    procs = [CTX.Process(target=_writer, args=(str(kit.dd.root), n, 100)) for n in (1, 2, 3)]
    for p in procs:
        p.start()
    deadline = time.monotonic() + 120
    while any(p.is_alive() for p in procs) and time.monotonic() < deadline:
        kit.index.page(limit=50)
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    assert kit.index.count() == 300
    assert len(all_pages(kit.index, 100)) == 300


def test_rebuild_on_several_processes_gives_the_sequential_index(kit: Kit) -> None:
    from app.core.posts.indexschema import CONTENT_TABLES

    authors = [kit.author(i) for i in range(1, 4)]
    for n in range(24):
        kit.post(authors[n % 3], 10 + n, TEXT=f"post {n}",
                 **({"TO_FINGERPRINT": authors[(n + 1) % 3]} if n % 4 == 0 else {}))
    bad = bytearray(kit.build(authors[0], 99, TEXT="bad").raw)
    bad[-3] ^= 2
    (kit.dd.posts / authors[0] / hashlib.sha1(bad).hexdigest()).write_bytes(bytes(bad))
    kit.age_dirs()
    assert reconcile.count_post_files(kit.dd) == 25

    def dump() -> dict[str, list[tuple[object, ...]]]:
        c = kit.index.conn()
        select = {"posts": "SELECT id, sha, author, created, kind, public, reaction, reshare,"
                           " conv FROM posts",   # positions: the clock differs, the order not
                  "meta": "SELECT * FROM meta WHERE key != 'epoch'"}
        out = {t: sorted(c.execute(select.get(t, f"SELECT * FROM {t}")).fetchall(), key=repr)
               for t in CONTENT_TABLES}
        out["order"] = c.execute("SELECT sha FROM posts ORDER BY author, pos").fetchall()
        return out

    seen: list[int] = []
    assert reconcile.rebuild(kit.index, progress=seen.append) == 24
    sequential, pages = dump(), all_pages(kit.index, 50)
    assert sum(seen) == 25
    seen.clear()
    assert reconcile.rebuild(kit.index, workers=2, progress=seen.append) == 24
    assert dump() == sequential and all_pages(kit.index, 50) == pages
    assert sum(seen) == 25
