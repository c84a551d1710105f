"""POST /feeds/<fp> as an oracle and as a free resource (issue 8, attacks 4 and 7), written
against the HTTP surface only, so that it runs unchanged on the code before the fix:
there a junk body got 400 for a hosted fingerprint and 404 otherwise, and no budget ever
answered 429.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from app import create_peer_app
from app.core.identity.identities import Identities
from app.core.network import feeds
from tests.helpers.datadirs import PASSWORD, make_datadir

OCTETS = "application/octet-stream"


def _post(client: Any, fp: str, body: bytes, addr: str) -> Any:
    return client.post(f"/feeds/{fp}", data=body, content_type=OCTETS,
                       environ_base={"REMOTE_ADDR": addr})


def test_attack4_junk_gets_the_same_bytes_for_hosted_known_blocked_and_unknown(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIWAN_INSECURE_KDF", "1")
    dd = make_datadir(tmp_path / "n")
    ids = Identities(dd)
    hosted, other = ids.create(PASSWORD), ids.create(PASSWORD)
    known_doc = ids.pub_document(other)
    ids.delete(other, PASSWORD)                 # its private key gone: known, not hosted
    ids.import_pub(known_doc)
    blocked = ids.create(PASSWORD)
    blocked_doc = ids.pub_document(blocked)
    ids.delete(blocked, PASSWORD)
    ids.import_pub(blocked_doc)
    ids.block(blocked)
    client = create_peer_app({"data_dir": str(dd.root)}).test_client()
    answers = set()
    for fp in (hosted, other, blocked, os.urandom(32).hex()):
        for body in (b"junk", os.urandom(1621), os.urandom(4000)):
            r = _post(client, fp, body, "192.0.2.1")
            answers.add((r.status_code, r.data))
    assert len(answers) == 1, answers


def test_attack7_requests_past_the_prefix_budget_get_429_and_retry_after(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With the default settings (no override, so that the old code runs it too). The
    clock the peer app reads is held at the start of one budget window: budgets count
    per fixed window, and on a loaded machine the 1,201 requests could cross into the
    next one (a CI run of stop 25 got 400 at the limit)."""
    held = int(time.time()) // 60 * 60 + 1
    monkeypatch.setattr(feeds.time, "time", lambda: float(held))
    dd = make_datadir(tmp_path / "n")
    limit = dd.settings.get("budget_prefix_requests", 1200)
    client = create_peer_app({"data_dir": str(dd.root)}).test_client()
    statuses = [_post(client, "ab" * 32, b"junk", "203.0.113.7").status_code
                for _ in range(limit + 1)]
    assert statuses[limit] == 429 and set(statuses[:limit]) == {400}
    r = _post(client, "ab" * 32, b"junk", "203.0.113.200")     # the same /24
    assert r.status_code == 429 and 1 <= int(r.headers["Retry-After"]) <= 60
    assert _post(client, "ab" * 32, b"junk", "203.0.114.7").status_code != 429
