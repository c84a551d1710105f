"""A post whose name another writer made a moment ago is counted as stored only once that
name is flushed (issue 14's promise: when ``ingest_many`` returns, every accepted post
survives a power cut).

A no-replace link or rename that finds the name taken (``EEXIST``) means another
writer (a second sync, an import, the other worker) named the same post; its data is on
disk, but its folder's entry may not be yet: that writer flushes it when *it* finishes.
The batch that found the name reports the post accepted, and a sync then moves its
cursor past it, so it must flush that folder too. Found by the tester of issues 8 and
14: a folder in which every post of the batch was found named was never flushed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from app.core.base import flush, fsio
from app.core.posts import storebatch
from app.core.posts.ingest import Ingestor
from tests.core.posts.test_ingest import FP, T0, make_node, post


@pytest.fixture(autouse=True)
def clean_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    """The one-``syncfs`` path (base/flush.py picks it by the machine's unwritten data)."""
    monkeypatch.setattr(flush, "dirty_bytes", lambda *a: 0)


def _spy(monkeypatch: pytest.MonkeyPatch, events: list[Any], on_first_syncfs: Any) -> None:
    """Record every flush (``("syncfs",)`` or ``("dir", folder)``); run ``on_first_syncfs``
    just after the first ``syncfs`` (the data flush, before any name is made)."""
    real_syncfs, real_dir = fsio.syncfs, fsio.fsync_dir

    def syncfs(path: Path) -> None:
        real_syncfs(path)
        events.append(("syncfs",))
        if events.count(("syncfs",)) == 1:
            on_first_syncfs()

    def fsync_dir(path: Path) -> None:
        real_dir(path)
        events.append(("dir", Path(path).name))

    for module in (fsio, storebatch):
        monkeypatch.setattr(module, "syncfs", syncfs)
        monkeypatch.setattr(module, "fsync_dir", fsync_dir)


@pytest.mark.parametrize("helped", [False, True])
def test_a_post_named_meanwhile_by_another_writer_has_its_folder_flushed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, helped: bool) -> None:
    """B's only post of the batch is named by someone else between this batch's data
    flush and its links: B's folder (or the whole file system) is flushed after that."""
    dd, _ = make_node(tmp_path, known="AB", verify_processes=2 if helped else 1)
    theirs = post("B", TEXT="named by another writer")
    raws = [post("A", TEXT=f"a{i}") for i in range(80 if helped else 5)] + [theirs]
    target = dd.posts / FP["B"] / Ingestor(dd).verify(theirs).sha1
    (dd.posts / FP["B"]).mkdir(exist_ok=True)
    events: list[Any] = []

    def another_writer() -> None:  # names the post; its own flush would come later
        target.write_bytes(theirs)
        events.append(("named",))

    _spy(monkeypatch, events, another_writer)
    result = Ingestor(dd, now=T0).ingest_many(raws)
    assert len(result.accepted) == len(raws) and not result.rejected
    after = events[events.index(("named",)) + 1:]
    assert ("syncfs",) in after or ("dir", FP["B"]) in after, events


def test_a_single_post_found_named_has_its_folder_flushed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dd, _ = make_node(tmp_path, known="B")
    raw = post("B", TEXT="named by another writer")
    folder = dd.posts / FP["B"]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / Ingestor(dd).verify(raw).sha1).write_bytes(raw)
    events: list[Any] = []
    _spy(monkeypatch, events, lambda: None)
    got = Ingestor(dd, now=T0).ingest(raw)
    assert not got.new and ("dir", FP["B"]) in events, events
    assert os.listdir(folder) == [got.sha1]
