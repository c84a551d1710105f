"""The bounded cache of recently served post files (app/core/network/servedfiles.py).

A served page's files are read once and kept (``feed_cache_kib`` per process); the
next request for them opens nothing. A file listed with another size than the
kept copy is read again; a deleted post is not served from the cache; the cache
never holds more than its setting, and 0 keeps nothing.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.core.base import config
from app.core.base.errors import BadInput
from app.core.network import pages, servedfiles
from app.core.posts.authoring import delete_own
from tests.helpers.servednode import served_node


@pytest.fixture(autouse=True)
def _empty_cache() -> Iterator[None]:
    servedfiles.forget()
    yield
    servedfiles.forget()


def _files(tmp_path: Path, sizes: list[int]) -> list[tuple[int, str]]:
    out = []
    for i, size in enumerate(sizes):
        path = tmp_path / f"post{i}"
        path.write_bytes(bytes([65 + i]) * size)
        out.append((i + 1, str(path)))
    return out


def _read(paths: list[tuple[int, str]], sizes: list[int], cache: int) -> list[bytes]:
    return [r[pages.RECORD_HEAD:] for r in servedfiles.page_records(paths, sizes,
                                                                      cache_bytes=cache)]


def _spy(monkeypatch: pytest.MonkeyPatch, name: str) -> list[str]:
    """The paths given to ``os.<name>`` from now on (it still does its work)."""
    seen: list[str] = []
    real = getattr(os, name)

    def spy(path: Any, *a: Any, **kw: Any) -> Any:
        seen.append(str(path))
        return real(path, *a, **kw)
    monkeypatch.setattr(os, name, spy)
    return seen


def test_a_served_file_is_served_again_without_opening_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    paths = _files(tmp_path, [100, 200, 300])
    sizes = [100, 200, 300]
    first = _read(paths, sizes, 16 * 1024)
    assert first == [b"A" * 100, b"B" * 200, b"C" * 300]
    opened = _spy(monkeypatch, "open")
    assert _read(paths, sizes, 16 * 1024) == first
    assert opened == []
    assert servedfiles.held() == (3, 600)


def test_a_file_listed_with_another_size_is_read_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    paths = _files(tmp_path, [100])
    _read(paths, [100], 16 * 1024)
    Path(paths[0][1]).write_bytes(b"Z" * 120)  # what the listing's stat would now say
    opened = _spy(monkeypatch, "open")
    assert _read(paths, [120], 16 * 1024) == [b"Z" * 120]
    assert opened == [paths[0][1]]
    assert _read(paths, [100], 16 * 1024) == []  # listed as 100 bytes, now 120: left out


def test_the_cache_holds_at_most_its_setting_and_0_holds_nothing(tmp_path: Path) -> None:
    paths = _files(tmp_path, [64] * 40)
    _read(paths, [64] * 40, 64 * 16)        # exactly 16 files fit; the oldest are dropped
    assert servedfiles.held() == (16, 64 * 16)
    servedfiles.forget()
    _read(paths[:1], [64], 64 * 16 - 1)     # a file above a sixteenth of the cache: not kept
    assert servedfiles.held() == (0, 0)
    _read(paths, [64] * 40, 0)
    assert servedfiles.held() == (0, 0)


def test_the_setting_bounds(tmp_path: Path) -> None:
    assert config.load(tmp_path, overrides={"feed_cache_kib": 0})["feed_cache_kib"] == 0
    assert config.load(tmp_path, overrides={"feed_cache_kib": 1024 * 1024})[
        "feed_cache_kib"] == 1024 * 1024
    with pytest.raises(BadInput, match="feed_cache_kib"):
        config.load(tmp_path, overrides={"feed_cache_kib": 1024 * 1024 + 1})


def test_a_deleted_post_is_not_served_from_the_cache(tmp_path: Path) -> None:
    node = served_node(tmp_path / "node")
    raws = node.raws
    assert node.posts() == raws
    assert servedfiles.held()[0] == 3
    tombstone = delete_own(node.dd, node.own, hashlib.sha1(raws[1]).hexdigest(),
                           seed=node.seed)
    after = node.posts()
    assert after[:2] == [raws[0], raws[2]] and raws[1] not in after
    assert hashlib.sha1(after[2]).hexdigest() == tombstone.sha1  # its deletion record


def test_a_held_file_is_listed_without_a_stat_and_one_removed_by_hand_leaves(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The second request of the same page looks at no file; a post file removed behind
    the index's back is not served once the automatic repair has run (here before every
    query: reconcile_interval_ms 0)."""
    node = served_node(tmp_path / "node", reconcile_interval_ms=0)
    raws, folder = node.raws, node.dd.posts / node.own
    assert node.posts() == raws
    looked = _spy(monkeypatch, "stat")
    assert node.posts() == raws
    assert not [p for p in looked if p.startswith(f"{folder}/")], looked  # no post file
    time.sleep(0.01)  # a new mtime for the author's folder
    (folder / hashlib.sha1(raws[1]).hexdigest()).unlink()
    assert node.posts() == [raws[0], raws[2]]
