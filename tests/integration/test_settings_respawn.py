"""A bad edit of diwan.toml while a node runs does not take it down when a worker is
replaced (found by the end-of-stop tester: the new worker read the edited file, failed
to boot, and gunicorn stopped the whole app): workers read the file as the master
started with it (app/core/base/settingsfile.py). Real gunicorn, a real SIGKILL."""

from __future__ import annotations

import os
import signal
import time

import pytest

from .conftest import NodeFactory

pytestmark = [pytest.mark.integration]


@pytest.mark.parametrize("app", ["peer", "admin"])
def test_a_replaced_worker_boots_with_the_settings_the_node_started_with(
        make_node: NodeFactory, app: str) -> None:
    node = make_node("n", settings={"feed_cache_kib": 512})
    toml = node.root / "diwan.toml"
    toml.write_text(toml.read_text() + "\nfeed_cache_kib = -1\n")  # invalid, and repeated
    master = node.main_pid(app)
    workers = [p for p in node.group_pids(app) if p != master]
    assert workers
    os.kill(workers[0], signal.SIGKILL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        now = [p for p in node.group_pids(app) if p != master]
        if now and workers[0] not in now:
            break
        time.sleep(0.1)
    time.sleep(1.0)  # a worker that failed to boot would have stopped the master by now
    assert node.alive(app), node.log(app)[-2000:]
    call = node.peer if app == "peer" else node.admin
    assert call("GET", "/health").status_code == 200
    assert "Worker failed to boot" not in node.log(app)
