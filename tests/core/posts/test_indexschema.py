"""The index's schema versions and what its queries cost (issue 14: cost growth)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.core.base.config import DEFAULTS
from app.core.posts import reconcile
from app.core.posts.index import Index
from app.core.posts.indexschema import SCHEMA_VERSION, Sizing, connect
from tests.helpers.post_kit import PostKit


@pytest.fixture
def kit(tmp_path: Path) -> Iterator[PostKit]:
    k = PostKit(tmp_path / "node")
    yield k
    k.index.close()


def _indexes(c: sqlite3.Connection) -> set[str]:
    return {r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type='index'")}


def _made_by_version_1(kit: PostKit) -> None:
    """Turn the kit's index into what a version-1 node left: posts_time, user_version 1."""
    c = kit.index.conn()
    c.execute("CREATE INDEX posts_time ON posts(created, sha)")
    c.execute("PRAGMA user_version=1")
    kit.index.close()


def test_a_version_1_index_is_upgraded_in_place_keeping_its_rows(kit: PostKit) -> None:
    a, b = kit.author(1), kit.author(2)
    posts = [kit.post(a, 100, TEXT="one"), kit.post(b, 101, TEXT="two", TO_FINGERPRINT=a),
             kit.post(b, 102, PROFILENAME="B")]
    _made_by_version_1(kit)
    c, created = connect(kit.index.path, 5)
    assert not created  # upgraded, not recreated: no repair has to re-read every file
    assert c.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 2
    assert "posts_time" not in _indexes(c) and "posts_kind" in _indexes(c)
    assert c.execute("SELECT count(*) FROM posts").fetchone()[0] == 3
    assert c.execute("SELECT count(*) FROM posts_fts").fetchone()[0] == 3
    c.close()
    index = Index(kit.dd)  # no repair hook: the rows listed are the upgraded index's own
    assert [e.sha1 for e in index.page(limit=10).items] == [p.sha1 for p in reversed(posts)]
    index.close()


def test_opening_an_upgraded_index_again_changes_nothing(kit: PostKit) -> None:
    kit.post(kit.author(1), 100, TEXT="one")
    _made_by_version_1(kit)
    connect(kit.index.path, 5)[0].close()
    c, created = connect(kit.index.path, 5)
    assert not created and c.execute("SELECT count(*) FROM posts").fetchone()[0] == 1
    c.close()


def test_a_new_index_has_no_index_over_every_kind(kit: PostKit) -> None:
    c = kit.index.conn()
    assert "posts_time" not in _indexes(c)
    assert c.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_an_index_of_an_unknown_version_is_recreated_and_refilled(kit: PostKit) -> None:
    post = kit.post(kit.author(1), 100, TEXT="one")
    c = kit.index.conn()
    c.execute("PRAGMA user_version=7")
    kit.index.close()
    c, created = connect(kit.index.path, 5)
    assert created and c.execute("SELECT count(*) FROM posts").fetchone()[0] == 0
    c.close()
    fresh = reconcile.open_index(kit.dd)
    assert [e.sha1 for e in fresh.page(limit=10).items] == [post.sha1]
    fresh.close()


def _plans(kit: PostKit, call: object) -> list[str]:
    """The query plan lines of every SELECT the index runs for ``call()``."""
    c = kit.index.conn()
    seen: list[str] = []
    c.set_trace_callback(seen.append)
    try:
        call()  # type: ignore[operator]
    finally:
        c.set_trace_callback(None)
    return [row[3] for sql in seen if sql.lstrip().upper().startswith("SELECT")
            for row in c.execute(f"EXPLAIN QUERY PLAN {sql}")]


@pytest.mark.parametrize("filters", [{}, {"kinds": ["post", "message"]}, {"authors": "a"},
                                     {"authors": "a", "kinds": ["profile"]}])
def test_pages_walk_an_index_without_sorting(kit: PostKit, filters: dict[str, object]) -> None:
    a, b = kit.author(1), kit.author(2)
    kinds = [{}, {"TO_FINGERPRINT": b}, {"PROFILENAME": "A"}]
    kit.ingestor.ingest_many([kit.build(fp, t, TEXT=str(t), **kinds[t % 3]).raw
                              for t in range(30) for fp in (a, b)])
    first = kit.index.page(limit=5)
    if filters.get("authors"):
        filters = {**filters, "authors": [a]}
    plans = _plans(kit, lambda: kit.index.page(limit=5, cursor=first.next_cursor, **filters))
    posts_steps = [p for p in plans if p.split()[1:2] == ["p"]]
    assert posts_steps and all("USING" in p and "INDEX" in p for p in posts_steps), plans
    assert not any("TEMP B-TREE" in p for p in plans), plans
    # the check for edits reads them by the row's SHA-1, not every post of its author
    assert any(p.startswith("SEARCH e USING PRIMARY KEY (old=?)") for p in plans), plans
    assert not any(p.startswith("SEARCH n") and p.endswith("(author=?)") for p in plans), plans


@pytest.mark.parametrize(("pages", "mib"), [(100, 1), (1_000_000, 4096)])
def test_the_checkpoint_and_cache_settings_reach_the_connection(
        tmp_path: Path, pages: int, mib: int) -> None:
    k = PostKit(tmp_path / "node", index_checkpoint_pages=pages, index_cache_mib=mib)
    c = k.index.conn()
    assert c.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == pages
    assert c.execute("PRAGMA cache_size").fetchone()[0] == -1024 * mib  # KiB
    k.index.close()


MIB = 1 << 20


@pytest.mark.parametrize(("db_bytes", "cache_kib", "pages"), [
    (0, 2048, 8192),                      # an empty index: the least of each
    (8 * MIB, 2048, 8192),                # a quarter is exactly the least cache
    (8 * MIB + 4096, 2049, 8192),         # one page more: the cache grows by 1 KiB
    (16 * MIB, 4096, 8192),               # the log: twice the pages = the least
    (16 * MIB + 4096, 4097, 8194),        # and grows past it
    (64 * MIB, 16384, 32768),             # both at their most
    (1 << 40, 16384, 32768),              # and stay there
])
def test_the_cache_and_the_log_grow_with_the_index_between_their_settings(
        db_bytes: int, cache_kib: int, pages: int) -> None:
    assert Sizing().for_size(db_bytes) == (cache_kib, pages)


def test_the_least_wins_when_the_settings_cross() -> None:
    crossed = Sizing(cache_mib=8, cache_max_mib=4, checkpoint_pages=5000, checkpoint_max_pages=100)
    assert crossed.for_size(0) == crossed.for_size(1 << 40) == (8192, 5000)


def test_a_writer_sizes_its_connection_for_the_index_as_it_is_now(tmp_path: Path) -> None:
    """Before each write transaction, from the database file's size (a sparse file
    stands in for a large index here)."""
    k = PostKit(tmp_path / "node", index_cache_mib=1, index_cache_max_mib=3,
                index_checkpoint_pages=100, index_checkpoint_max_pages=300)
    c = k.index.conn()
    assert c.execute("PRAGMA cache_size").fetchone()[0] == -1024
    assert c.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 100
    with open(k.index.path, "r+b") as f:  # past the last page: SQLite ignores it
        f.truncate(16 * MIB)
    with k.index.write():
        pass
    assert c.execute("PRAGMA cache_size").fetchone()[0] == -3 * 1024
    assert c.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 300
    k.index.close()


def test_batches_commit_without_a_checkpoint_until_the_log_holds_the_set_pages(
        tmp_path: Path) -> None:
    """SQLite's default (1,000 pages) would have checkpointed and restarted the log."""
    frames = {}
    for pages in (DEFAULTS["index_checkpoint_pages"], 200):
        k = PostKit(tmp_path / str(pages), index_checkpoint_pages=pages,
                    index_checkpoint_max_pages=pages)  # a small index: the least applies
        a = k.author(1)
        for n in range(30):  # about 50 pages a batch; the files do not matter here
            k.index.add_many([k.build(a, 1000 * n + t, TEXT=f"{n} {t}") for t in range(200)])
        frames[pages] = (Path(f"{k.index.path}-wal").stat().st_size - 32) // (4096 + 24)
        k.index.close()
    assert frames[DEFAULTS["index_checkpoint_pages"]] > 1200
    assert frames[200] < 400  # restarted after each checkpoint near 200 pages


def test_a_committed_batch_is_flushed_at_its_commit(kit: PostKit) -> None:
    # ingest reports a post stored only after its index rows commit: in WAL mode only
    # synchronous=FULL flushes the log at each commit (NORMAL waits for a checkpoint, so
    # a power cut could lose the last batches' rows)
    c = kit.index.conn()
    assert c.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert c.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_a_failed_commit_leaves_no_transaction_open(kit: PostKit) -> None:
    """A COMMIT that fails (here a deferred foreign key; a full disk or a busy database
    too) may leave its transaction open: the pooled connection then refused every later
    write ("cannot start a transaction within a transaction") and kept any PRAGMA it was
    given. The write is rolled back and the connection stays usable."""
    c = kit.index.conn()
    c.execute("PRAGMA foreign_keys=ON")
    with pytest.raises(sqlite3.IntegrityError):
        with kit.index.write() as w:
            w.execute("CREATE TABLE parent(id INTEGER PRIMARY KEY)")
            w.execute("CREATE TABLE child(p INTEGER REFERENCES parent(id)"
                      " DEFERRABLE INITIALLY DEFERRED)")
            w.execute("INSERT INTO child(p) VALUES (1)")  # checked at COMMIT: no parent 1
    assert not c.in_transaction
    c.execute("PRAGMA foreign_keys=OFF")
    with kit.index.write() as w:  # the next write works
        w.execute("INSERT INTO meta(key, value) VALUES ('probe', 1)")
    assert c.execute("SELECT value FROM meta WHERE key='probe'").fetchone() == (1,)
    assert c.execute("SELECT name FROM sqlite_master WHERE name='child'").fetchone() is None
