"""Deletion and edit records, local deletions, profile resolution (issue 9, core layer).

Authors are fixed-seed keys (:class:`PostKit`); every post goes through the real ingest
and index.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from app.core.base.errors import BadPost, Reason
from app.core.posts import records
from app.core.posts.indexschema import connect
from app.core.posts.listing import Entry
from app.core.posts.notices import notices
from app.core.posts.reconcile import rebuild
from app.core.posts.timeline import Timeline
from app.core.posts.versions import _order, versions
from tests.helpers.post_kit import PostKit

NOW = int(time.time())


@pytest.fixture
def kit(tmp_path: Path) -> PostKit:
    return PostKit(tmp_path / "node")


def _listed(kit: PostKit) -> set[str]:
    return {e.sha1 for e in Timeline(kit.dd, kit.index).page(limit=100).items}


def test_a_deletion_record_removes_every_version_and_refuses_them_from_then_on(
        kit: PostKit) -> None:
    a = kit.author(1)
    v1 = kit.post(a, NOW - 30, TEXT="v1")
    v2 = kit.post(a, NOW - 20, TEXT="v2", PREVIOUS_SUPERSEDES=v1.sha1)
    record = kit.post(a, NOW - 10, POST_DELETES=v2.sha1)  # names the newest only
    assert not (kit.dd.posts / a / v1.sha1).exists() and not (kit.dd.posts / a / v2.sha1).exists()
    assert (kit.dd.posts / a / record.sha1).exists()
    assert _listed(kit) == set()  # the record itself is never listed
    for old in (v1, v2):
        with pytest.raises(BadPost) as caught:
            kit.ingestor.ingest(old.raw)
        assert caught.value.reason == Reason.DELETED
    batch = kit.ingestor.ingest_many([v1.raw, v2.raw])
    assert (batch.accepted, batch.rejected, batch.refused) == ([], [], [0, 1])


def test_nobody_deletes_or_pre_deletes_someone_elses_post(kit: PostKit) -> None:
    a, b = kit.author(1), kit.author(2)
    held = kit.post(a, NOW - 30, TEXT="mine")
    with pytest.raises(BadPost) as caught:  # the target is here: refused outright
        kit.post(b, NOW - 20, POST_DELETES=held.sha1)
    assert caught.value.reason == Reason.BAD_RECORD
    future = kit.build(a, NOW - 15, TEXT="not here yet")
    kit.post(b, NOW - 10, POST_DELETES=future.sha1)  # unknown target: inert for a's post
    assert kit.ingestor.ingest(future.raw).new is True
    assert future.sha1 in _listed(kit) and held.sha1 in _listed(kit)


@pytest.mark.parametrize("attrs", [
    {"POST_DELETES": "1" * 40, "TEXT": "a record with a body"},
    {"TEXT": "x", "PARENT_PARENTSHA": "1" * 40},
    {"TEXT": "x", "A_SUPERSEDES": "1" * 40, "B_SUPERSEDES": "2" * 40},
])
def test_malformed_records_are_rejected(kit: PostKit, attrs: dict[str, str]) -> None:
    a = kit.author(1)
    with pytest.raises(BadPost) as caught:
        kit.post(a, NOW, **attrs)
    assert caught.value.reason == Reason.BAD_RECORD
    assert not (kit.dd.posts / a).exists()  # nothing written


def test_an_edit_of_someone_elses_post_is_rejected(kit: PostKit) -> None:
    a, b = kit.author(1), kit.author(2)
    held = kit.post(a, NOW - 30, TEXT="mine")
    with pytest.raises(BadPost) as caught:
        kit.post(b, NOW - 20, TEXT="yours now", PREVIOUS_SUPERSEDES=held.sha1)
    assert caught.value.reason == Reason.BAD_RECORD


def test_tombstones_survive_a_rebuild_of_the_index(kit: PostKit) -> None:
    a = kit.author(1)
    doomed = kit.post(a, NOW - 30, TEXT="doomed")
    kit.post(a, NOW - 20, POST_DELETES=doomed.sha1)
    rebuild(kit.index)
    with pytest.raises(BadPost) as caught:
        kit.ingestor.ingest(doomed.raw)
    assert caught.value.reason == Reason.DELETED
    # a copy restored behind the node's back (a backup) is not listed again either
    (kit.dd.posts / a / doomed.sha1).write_bytes(doomed.raw)
    rebuild(kit.index)
    assert doomed.sha1 not in _listed(kit)


def test_a_post_deleted_here_is_remembered(kit: PostKit) -> None:
    a = kit.author(1)
    post = kit.post(a, NOW - 30, TEXT="not for me")
    records.forget(kit.dd, kit.index, a, post.sha1)
    assert not (kit.dd.posts / a / post.sha1).exists() and kit.index.get(post.sha1) is None
    assert kit.ingestor.ingest_many([post.raw]).refused == [0]
    rebuild(kit.index)
    assert kit.ingestor.ingest_many([post.raw]).refused == [0]


def test_replies_to_every_version_hang_under_the_newest(kit: PostKit) -> None:
    a, b = kit.author(1), kit.author(2)
    v1 = kit.post(a, NOW - 30, TEXT="v1")
    r1 = kit.post(b, NOW - 25, TEXT="on v1", REPLY_POSTSHA=v1.sha1, TO_FINGERPRINT=a)
    v2 = kit.post(a, NOW - 20, TEXT="v2", PREVIOUS_SUPERSEDES=v1.sha1)
    r2 = kit.post(b, NOW - 15, TEXT="on v2", REPLY_POSTSHA=v2.sha1, TO_FINGERPRINT=a)
    for asked in (v1.sha1, v2.sha1):
        thread = Timeline(kit.dd, kit.index).replies(asked)
        assert thread.root == v2.sha1 and thread.versions == [v1.sha1, v2.sha1]
        assert [n.entry.sha1 for n in thread.walk()] == [r1.sha1, r2.sha1]
    found = versions(kit.index, v1.sha1)
    assert found is not None and found.latest.sha1 == v2.sha1 and found.edited
    assert _listed(kit) == {v2.sha1, r1.sha1, r2.sha1}


def test_an_edit_in_the_same_second_is_still_the_newest(kit: PostKit) -> None:
    a = kit.author(1)
    for n in range(8):  # whatever the SHA-1s, the edit order decides
        v1 = kit.post(a, NOW - 100 + n, TEXT=f"v1 {n}")
        v2 = kit.post(a, NOW - 100 + n, TEXT=f"v2 {n}", PREVIOUS_SUPERSEDES=v1.sha1)
        found = versions(kit.index, v1.sha1)
        assert found is not None and found.latest.sha1 == v2.sha1


def test_two_nodes_holding_the_same_profiles_show_the_same_one(tmp_path: Path) -> None:
    """Profiles resolve newest first, ties by SHA-1, an edit's replaced version never: the
    order the posts arrived in does not matter."""
    one, two = PostKit(tmp_path / "one"), PostKit(tmp_path / "two")
    a = one.author(1)
    two.author(1)
    same_time = [one.build(a, NOW - 50, PROFILENAME=f"name {n}") for n in range(4)]
    edited = one.build(a, NOW - 60, PROFILENAME="renamed, an older clock",
                       NAME_SUPERSEDES=max(same_time, key=lambda p: p.sha1).sha1)
    for kit, order in ((one, same_time), (two, list(reversed(same_time)))):
        for post in order:
            kit.ingestor.ingest(post.raw)
    seen = [Timeline(k.dd, k.index).profile_for(a, [])["sha1"] for k in (one, two)]
    assert seen[0] == seen[1] == max(p.sha1 for p in same_time)
    for kit in (one, two):
        kit.ingestor.ingest(edited.raw)
    seen = [Timeline(k.dd, k.index).profile_for(a, [])["sha1"] for k in (one, two)]
    assert seen[0] == seen[1] == max(p.sha1 for p in same_time if p.sha1 != max(
        q.sha1 for q in same_time))


def test_an_index_made_before_the_record_tables_gets_them(tmp_path: Path) -> None:
    path = tmp_path / "index.sqlite3"
    c, _ = connect(path, 5.0)
    c.execute("DROP TABLE tombstones")
    c.execute("DROP TABLE edits")
    c.close()
    c, created = connect(path, 5.0)
    assert created is False  # nothing rebuilt: the tables are added
    tables = {r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"tombstones", "edits", "posts"} <= tables
    with pytest.raises(sqlite3.IntegrityError):
        c.execute("INSERT INTO tombstones(sha, author, record) VALUES (NULL, 1, 1)")


def test_a_very_long_edit_chain_orders_without_recursion() -> None:
    shas = [f"{n:040x}" for n in range(5000)]
    older = {s: ([shas[i - 1]] if i else []) for i, s in enumerate(shas)}
    entries = [Entry(s, "a" * 64, 0, "post", True, False, False) for s in reversed(shas)]
    assert [e.sha1 for e in sorted(entries, key=_order(older))] == shas


def test_records_and_replaced_versions_are_no_notifications(kit: PostKit) -> None:
    me, other = kit.author(1), kit.author(2)
    mine = kit.post(me, NOW - 50, TEXT="mine")
    to_me = kit.post(other, NOW - 40, TEXT="hello", TO_FINGERPRINT=me)
    reply = kit.post(other, NOW - 35, TEXT="re", REPLY_POSTSHA=mine.sha1, TO_FINGERPRINT=me)
    edit = kit.post(other, NOW - 30, TEXT="re!", REPLY_POSTSHA=mine.sha1, TO_FINGERPRINT=me,
                    PREVIOUS_SUPERSEDES=reply.sha1)
    kit.post(other, NOW - 20, POST_DELETES=to_me.sha1, TO_FINGERPRINT=me)
    found = {n.entry.sha1 for n in notices(kit.index, [me], [], limit=50)}
    assert found == {edit.sha1}


def test_a_removal_cut_short_by_a_crash_is_finished_at_the_next_start(kit: PostKit) -> None:
    """forget() remembers first; a kill before the file went leaves it on disk and listed.
    The next start (the scheduler calls finish_forgotten) removes it and its rows."""
    a = kit.author(1)
    post = kit.post(a, NOW - 30, TEXT="half removed")
    kept = kit.post(a, NOW - 20, TEXT="still wanted")
    with records.StateFile(kit.dd, records.LOCAL_DELETIONS).update() as data:
        data[post.sha1] = a  # what forget() had written when the kill came
    assert post.sha1 in _listed(kit)
    assert records.finish_forgotten(kit.dd, kit.index) == [post.sha1]
    assert not (kit.dd.posts / a / post.sha1).exists()
    assert post.sha1 not in _listed(kit) and kept.sha1 in _listed(kit)
    assert records.finish_forgotten(kit.dd, kit.index) == []  # nothing left to do
