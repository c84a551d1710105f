"""Full-text search in the index: filled on insert and rebuild, emptied on delete, any
typed query is safe (issue 12, Search)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import hypothesis
import pytest
from hypothesis import strategies as st

from app.core.base.errors import BadInput
from app.core.posts.indexschema import SCHEMA_VERSION, add_search, connect
from app.core.posts.reconcile import rebuild
from app.core.posts.search import fts_query, search
from tests.helpers.post_kit import PostKit


@pytest.fixture
def kit(tmp_path: Path) -> PostKit:
    return PostKit(tmp_path / "node")


def found(kit: PostKit, text: str, **kw: object) -> list[str]:
    return [e.sha1 for e in search(kit.index, text, limit=50, **kw).items]  # type: ignore[arg-type]


def test_posts_are_found_by_their_words_newest_first(kit: PostKit) -> None:
    a, b = kit.author(1), kit.author(2)
    old = kit.post(a, 100, TEXT="Olive harvest in Jenin")
    new = kit.post(b, 200, TEXT="the olive oil is ready", X_WORKPLACE="Café Naïve")
    kit.post(a, 300, TEXT="nothing about trees")
    assert found(kit, "olive") == [new.sha1, old.sha1]
    assert found(kit, "OLIVE harvest") == [old.sha1]  # every word must match
    assert found(kit, "oli*") == [new.sha1, old.sha1]  # a trailing * is a prefix
    assert found(kit, "cafe naive") == [new.sha1]  # diacritics folded
    assert found(kit, "olive", hide=[b]) == [old.sha1]  # muted authors are left out
    kit.dd.identities.joinpath("blocked").mkdir(exist_ok=True)
    kit.dd.identities.joinpath("blocked", f"{a}.pub").write_bytes(b"")
    assert found(kit, "olive") == [new.sha1]  # and blocked ones


def test_deleted_posts_leave_the_search_and_a_rebuild_fills_it(kit: PostKit) -> None:
    a = kit.author(1)
    p = kit.post(a, 100, TEXT="ephemeral words")
    q = kit.post(a, 101, TEXT="lasting words")
    (kit.dd.posts / a / p.sha1).unlink()
    assert kit.index.remove(p.sha1)
    rows = kit.index.conn().execute("SELECT count(*) FROM posts_fts").fetchone()[0]
    assert rows == 1 and found(kit, "words") == [q.sha1]
    kit.index.conn().execute("DELETE FROM posts_fts")
    assert found(kit, "lasting") == []
    rebuild(kit.index)
    assert found(kit, "lasting") == [q.sha1]
    assert found(kit, "ephemeral") == []


def test_media_and_addressing_are_not_indexed(kit: PostKit) -> None:
    a = kit.author(1)
    kit.post(a, 100, TEXT="hello", TO_FINGERPRINT=kit.author(2))
    assert found(kit, kit.author(2)[:20]) == []


HOSTILE = ['"', '""', "a OR", "NEAR(a b)", "a AND OR NOT", "*", "col:x", "^a", "(", ")",
           "a\x00b", "'; DROP TABLE posts; --", "-x", "{a b}: c", "a + b", "\u202e"]


@pytest.mark.parametrize("text", HOSTILE)
def test_fts_syntax_in_a_query_is_only_words(kit: PostKit, text: str) -> None:
    a = kit.author(1)
    kit.post(a, 100, TEXT="DROP TABLE posts OR NEAR a b")
    search(kit.index, text, limit=10)  # never an sqlite3 error
    assert kit.index.count() == 1


@hypothesis.given(st.text(max_size=60))
@hypothesis.settings(max_examples=200, deadline=None,
                     suppress_health_check=[hypothesis.HealthCheck.function_scoped_fixture])
def test_any_typed_text_is_a_valid_query(kit: PostKit, text: str) -> None:
    query = fts_query(text, max_chars=200, max_terms=100)
    if query is not None:
        kit.index.conn().execute("SELECT count(*) FROM posts_fts WHERE posts_fts MATCH ?",
                                 (query,)).fetchone()


def test_query_limits_are_settings_with_edges(tmp_path: Path) -> None:
    kit = PostKit(tmp_path / "n", web_search_max_chars=10, web_search_max_terms=2)
    search(kit.index, "x" * 10, limit=5)
    with pytest.raises(BadInput):
        search(kit.index, "x" * 11, limit=5)
    search(kit.index, "a b", limit=5)
    with pytest.raises(BadInput):
        search(kit.index, "a b c", limit=5)
    assert search(kit.index, "   ", limit=5).items == []


def test_an_index_made_before_search_is_migrated_in_place(tmp_path: Path) -> None:
    kit = PostKit(tmp_path / "node")
    p = kit.post(kit.author(1), 100, TEXT="kept through the migration")
    c = kit.index.conn()
    c.execute("DROP TRIGGER posts_fts_gone")  # as it was made before: no trigger, no table
    c.execute("DROP TABLE posts_fts")
    kit.index.close()
    c2, created = connect(kit.index.path, 5)
    assert not created and c2.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert c2.execute("SELECT count(*) FROM posts").fetchone()[0] == 0  # refilled by repair
    assert c2.execute("SELECT count(*) FROM fps").fetchone()[0] >= 1  # the rest kept
    assert not add_search(c2)  # once only
    c2.close()
    assert found(kit, "migration") == [p.sha1]  # the automatic repair re-read the file


def test_the_search_table_exists_in_a_new_index(kit: PostKit) -> None:
    kit.post(kit.author(1), 100, TEXT="x")
    with pytest.raises(sqlite3.OperationalError):
        kit.index.conn().execute("SELECT * FROM posts_fts WHERE posts_fts MATCH '\"'")


def test_results_come_in_pages_that_never_skip_or_repeat(kit: PostKit) -> None:
    a = kit.author(1)
    made = [kit.post(a, 100 + i, TEXT=f"word number {i}").sha1 for i in range(7)]
    seen: list[str] = []
    page = search(kit.index, "word", limit=3)
    while True:
        seen += [e.sha1 for e in page.items]
        if page.before is None:
            break
        page = search(kit.index, "word", limit=3, before=page.before)
    assert seen == list(reversed(made))
    for bad in (0, -1, True, 2**60):
        with pytest.raises(BadInput):
            search(kit.index, "word", limit=3, before=bad)
