"""A full disk (ENOSPC/EDQUOT injected): writes answer 507 naming the data directory, reads work.

The same on a real full file system: tests/integration/test_full_disk.py.
"""

from __future__ import annotations

import errno
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from app.core.base import fsio
from app.core.posts import reconcile
from tests.helpers.clients import AdminClient, assert_error, make_admin_client

PW = "pw-full-disk-test"


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> tuple[AdminClient, str, str]:
    client = make_admin_client(tmp_path_factory.mktemp("full"))
    fp = client.post("/identities", json={"password": PW}).json["fingerprint"]
    r = client.post("/posts", json={"fingerprint": fp, "password": PW, "text": "before"})
    assert r.status_code == 201, r.json
    return client, fp, r.json["sha1"]


def _full(code: int) -> Any:
    def fail(*args: Any, **kw: Any) -> Any:
        raise OSError(code, "No space left on device" if code == errno.ENOSPC
                      else "Disk quota exceeded")
    return fail


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT])
def test_a_write_on_a_full_disk_is_507_and_reads_still_work(
        node: tuple[AdminClient, str, str], monkeypatch: pytest.MonkeyPatch, code: int) -> None:
    client, fp, sha = node
    monkeypatch.setattr(fsio, "_write_temp", _full(code))
    monkeypatch.setattr(fsio.BatchWriter, "add", _full(code))
    monkeypatch.setattr(reconcile, "reconcile", _full(code))  # an index repair on read, too
    r = client.post("/posts", json={"fingerprint": fp, "password": PW, "text": "after"})
    body = assert_error(r, 507)
    assert body["status"] == "disk_full"
    assert str(client.dd.root) in body["message"] and "free:" in body["message"]
    listed = client.get("/posts")
    assert listed.status_code == 200, listed.json
    assert sha in {p["sha1"] for p in listed.json["posts"]}
    assert client.get(f"/posts/{sha}").status_code == 200


def test_an_index_database_that_is_full_does_not_fail_reads(
        node: tuple[AdminClient, str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    client, _, sha = node

    def full(*args: Any, **kw: Any) -> Any:
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(reconcile, "reconcile", full)
    listed = client.get("/posts")
    assert listed.status_code == 200, listed.json
    assert sha in {p["sha1"] for p in listed.json["posts"]}


def test_other_os_errors_stay_internal_errors(node: tuple[AdminClient, str, str],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    client, fp, _ = node
    monkeypatch.setattr(fsio, "_write_temp", _full(errno.EIO))
    monkeypatch.setattr(fsio.BatchWriter, "add", _full(errno.EIO))
    r = client.post("/posts", json={"fingerprint": fp, "password": PW, "text": "eio"})
    assert_error(r, 500)


def test_the_status_reports_the_free_space(node: tuple[AdminClient, str, str],
                                           tmp_path: Path) -> None:
    from app.core.upkeep.doctor import report

    disk = report(node[0].dd)["disk"]
    assert disk["free_bytes"] > 0 and disk["full"] is False


def test_the_admin_status_shows_a_full_disk(node: tuple[AdminClient, str, str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from app.core.base import diskspace

    client = node[0]
    ok = client.get("/status")
    assert ok.status_code == 200 and ok.json["disk"]["full"] is False, ok.json
    monkeypatch.setattr(diskspace.shutil, "disk_usage", lambda p: (10**9, 10**9 - 100, 100))
    full = client.get("/status").json
    assert full["ok"] is False and full["disk"] == {"free_bytes": 100, "total_bytes": 10**9,
                                                    "full": True}
    assert any("is full" in p for p in full["problems"])
