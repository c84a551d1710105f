"""Clean-up of unused public keys: what goes, what always stays, the edge of the age limit."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest

from app.core.base import crypto
from app.core.base.datadir import DataDir
from app.core.identity import keys
from app.core.identity.identities import Identities
from app.core.network.contacts import Contacts
from app.core.posts import codec as posts
from app.core.posts.ingest import Ingestor
from app.core.upkeep.gc import DAY, explain, gc
from tests.helpers.datadirs import PASSWORD, make_datadir
from tests.helpers.fake_peers import copy_node, other_key

NOW = 2_000_000_000.0


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> tuple[DataDir, str]:
    dd = make_datadir(tmp_path_factory.mktemp("template"))
    return dd, Identities(dd).create(PASSWORD)


def imported(dd: DataDir, age_days: float) -> str:
    fp, doc, _ = other_key()
    Identities(dd).import_pub(doc)
    when = NOW - age_days * DAY
    os.utime(Identities(dd).pub_path(fp), (when, when))
    return fp


def test_gc_deletes_only_unused_strangers(tmp_path: Path, template: tuple[DataDir, str]) -> None:
    dd = copy_node(tmp_path / "n", template[0], [template[1]])
    me = template[1]
    ids = Identities(dd)
    os.utime(ids.pub_path(me), (0, 0))  # an own identity, however old, stays
    old = imported(dd, 91)
    recent = imported(dd, 10)
    contact = imported(dd, 400)
    Contacts(dd).put(contact, "http://127.0.0.1:9", me)
    member = imported(dd, 400)
    ids.create_group("friends")
    ids.add_member("friends", member)
    blocked = imported(dd, 400)
    ids.block(blocked)
    for fp in (member, blocked):  # adding to a group reads the key: make it old again
        os.utime(ids.pub_path(fp), (0, 0))

    assert gc(dd, dry_run=True, clock=lambda: NOW) == [old]
    assert ids.exists(old)
    assert gc(dd, dry_run=False, clock=lambda: NOW) == [old]
    assert not ids.exists(old)
    for fp in (me, recent, contact, member, blocked):
        assert ids.exists(fp), fp
    assert ids.is_own(me)
    assert gc(dd, dry_run=False, clock=lambda: NOW) == []


@pytest.mark.parametrize("days, gone", [(29.99, False), (30.01, True)])
def test_gc_age_edge(tmp_path: Path, template: tuple[DataDir, str], days: float,
                     gone: bool) -> None:
    dd = copy_node(tmp_path / "n", template[0], [template[1]], gc_unused_days=30)
    fp = imported(dd, days)
    assert gc(dd, dry_run=False, clock=lambda: NOW) == ([fp] if gone else [])
    assert Identities(dd).exists(fp) is not gone


def test_using_a_key_keeps_it(tmp_path: Path, template: tuple[DataDir, str]) -> None:
    dd = copy_node(tmp_path / "n", template[0], [template[1]])
    fp = imported(dd, 100)
    Identities(dd).public_key(fp)  # a use touches the file
    assert gc(dd, dry_run=False) == []


def test_authors_of_stored_posts_and_reshared_authors_are_kept(tmp_path: Path) -> None:
    dd = DataDir(tmp_path / "n", {"gc_unused_days": 1}, environ={})
    dd.initialise()
    ids = Identities(dd)
    seeds = {name: bytes([i + 1]) * 32 for i, name in enumerate(("inner", "wrapper", "idle"))}
    fps = {name: ids.import_pub(keys.certify(seed, crypto.transport_public(seed[::-1]))
                                .to_bytes()) for name, seed in seeds.items()}
    now = int(time.time())
    inner = posts.build_post(seeds["inner"], {"TEXT": "original", "CREATED_TIME": now})
    wrapper = posts.build_post(seeds["wrapper"], {"SHARED_POST": inner.decode(),
                                                  "CREATED_TIME": now})
    Ingestor(dd).ingest(wrapper)
    old = now - 10 * DAY
    for fp in fps.values():
        os.utime(ids.pub_path(fp), (old, old))
    assert gc(dd, dry_run=True) == [fps["idle"]]
    assert gc(dd, dry_run=False) == [fps["idle"]]
    assert ids.exists(fps["inner"]) and ids.exists(fps["wrapper"])
    assert not ids.exists(fps["idle"])


def test_keys_of_files_the_index_does_not_hold_yet_are_kept(tmp_path: Path) -> None:
    """Posts restored into posts/<FP>/ behind the index's back: their keys are still needed."""
    dd = DataDir(tmp_path / "n", {"gc_unused_days": 1}, environ={})
    dd.initialise()
    ids = Identities(dd)
    seeds = {name: bytes([i + 7]) * 32 for i, name in enumerate(("restored", "inner", "idle"))}
    fps = {name: ids.import_pub(keys.certify(seed, crypto.transport_public(seed[::-1]))
                                .to_bytes()) for name, seed in seeds.items()}
    now = int(time.time())
    inner = posts.build_post(seeds["inner"], {"TEXT": "original", "CREATED_TIME": now})
    restored = [posts.build_post(seeds["restored"], {"TEXT": "from a backup",
                                                     "CREATED_TIME": now}),
                posts.build_post(seeds["restored"], {"SHARED_POST": inner.decode(),
                                                     "CREATED_TIME": now + 1})]
    folder = dd.posts / fps["restored"]
    folder.mkdir()
    for raw in restored:  # copied in as a restore would: no ingest, no index
        (folder / hashlib.sha1(raw).hexdigest()).write_bytes(raw)
    old = now - 200 * DAY
    for fp in fps.values():
        os.utime(ids.pub_path(fp), (old, old))
    assert gc(dd, dry_run=True) == [fps["idle"]]
    assert gc(dd, dry_run=False) == [fps["idle"]]
    assert ids.exists(fps["restored"]) and ids.exists(fps["inner"])
    from app.core.posts.reconcile import open_index, rebuild
    assert rebuild(open_index(dd)) == 2  # and the restored posts can still be verified


def test_dry_run_says_why_each_key_may_go(tmp_path: Path, template: tuple[DataDir, str]) -> None:
    dd = copy_node(tmp_path / "n", template[0], [template[1]])
    old = imported(dd, 120)
    reasons = explain(dd, gc(dd, dry_run=True, clock=lambda: NOW), clock=lambda: NOW)
    assert list(reasons) == [old]
    assert "unused for 120 days" in reasons[old] and "no stored post" in reasons[old]
