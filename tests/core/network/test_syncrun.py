"""The owner's "sync now" from the pages: its progress comes from the sync locks and the
sync status, across processes (issue 12, Contacts: sync now with progress)."""

from __future__ import annotations

import time
from pathlib import Path

from app.core.base.fsio import file_lock
from app.core.network.contacts import Contacts
from app.core.network.syncrun import SyncRuns, lock_held, progress, syncing_now
from app.core.network.syncstatus import StatusStore, SyncStatus
from tests.helpers.post_kit import PostKit


def test_progress_waiting_running_done_then_finished(tmp_path: Path) -> None:
    kit = PostKit(tmp_path / "n", web_sync_max_age=60)
    me, a, b = kit.author(0), kit.author(1), kit.author(2)
    (kit.dd.identities / f"{me}.key").write_bytes(b"")  # stands for an own identity
    for fp in (a, b):
        Contacts(kit.dd).put(fp, "http://127.0.0.1:9", me)
    assert progress(kit.dd)["started"] is None and not syncing_now(kit.dd)
    runs = SyncRuns(kit.dd)
    assert runs.start()
    assert not runs.start()  # one run at a time
    with file_lock(kit.dd.locks / f"sync-{a}.lock"):
        assert lock_held(kit.dd, a) and not lock_held(kit.dd, b)
        states = {r["fingerprint"]: r["state"] for r in progress(kit.dd)["contacts"]}
        assert states == {a: "running", b: "waiting"} and syncing_now(kit.dd)
    StatusStore(kit.dd).save(SyncStatus(b, last_attempt=time.time() + 1))
    states = {r["fingerprint"]: r["state"] for r in progress(kit.dd)["contacts"]}
    assert states == {a: "waiting", b: "done"}
    assert progress(kit.dd, now=time.time() + 61)["active"] is False  # a dead worker's run
    runs.run()  # nobody listens at port 9: both fail fast, and the run is finished
    shown = progress(kit.dd)
    assert shown["finished"] is not None and not shown["active"]
    assert {r["state"] for r in shown["contacts"]} == {"done"}
    assert all(r["status"]["state"] == "failing" for r in shown["contacts"])
    assert runs.start([a]) and progress(kit.dd)["contacts"][0]["fingerprint"] == a
