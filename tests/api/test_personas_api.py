"""Attack 5: personas on one node are not linked through key lookups or shared connections.

One node holds two own identities, A1 and A2. A1 follows R1 and A2 follows R2,
two personas of one remote node R; A2 also follows D, whose node records every
request it gets. R1 reshares a post by X, whose key this node lacks. Syncing
(through the admin API, over real HTTP on 127.0.0.1) must not ask D (a contact
only A2 follows) anything about content synced as A1, and the requests made as
A1 and as A2 must not share a connection.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from live_nodes import copy_identities, serving

from app import create_peer_app
from app.core.base import crypto
from app.core.base.datadir import DataDir
from app.core.identity import keys
from app.core.identity.identities import Identities
from app.core.posts.codec import build_post
from app.core.posts.ingest import Ingestor
from tests.helpers.clients import AdminClient, make_admin_client
from tests.helpers.datadirs import PASSWORD, make_datadir

NOW = int(time.time())


@dataclass
class Ids:
    template: DataDir
    a1: str
    a2: str
    r1: str
    r2: str


@pytest.fixture(scope="module")
def ids(tmp_path_factory: pytest.TempPathFactory) -> Ids:
    dd = make_datadir(tmp_path_factory.mktemp("template"))
    store = Identities(dd)
    return Ids(dd, *(store.create(PASSWORD) for _ in range(4)))


def recorder(app: Any, log: list[tuple[str, str]]) -> Any:
    """``app`` behind a wrapper that records (path, client port) of every request."""
    def wrapped(environ: dict[str, Any], start: Any) -> Any:
        log.append((environ["PATH_INFO"], str(environ.get("REMOTE_PORT"))))
        return app(environ, start)
    return wrapped


def key_only_node(doc: bytes, fp: str) -> Any:
    """D's node: serves D's key, answers everything else with 404."""
    def app(environ: dict[str, Any], start: Any) -> list[bytes]:
        if environ["PATH_INFO"] == f"/identities/{fp}":
            start("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(doc)))])
            return [doc]
        start("404 Not Found", [("Content-Type", "text/plain"), ("Content-Length", "0")])
        return []
    return app


@dataclass
class World:
    node: AdminClient
    r_log: list[tuple[str, str]]
    d_log: list[tuple[str, str]]
    x: str
    d: str


@pytest.fixture
def world(tmp_path: Path, ids: Ids) -> Iterator[World]:
    remote = make_datadir(copy_identities(ids.template, tmp_path / "r", [ids.r1, ids.r2]))
    r1_seed = Identities(ids.template).open_seed(ids.r1, PASSWORD)
    x_seed = crypto.new_signing_seed()
    x = keys.certify(x_seed, crypto.transport_public(crypto.new_transport_secret()))
    Identities(remote).import_pub(x.to_bytes())  # R held X's key to accept the reshare ...
    inner = build_post(x_seed, {"CREATED_TIME": NOW - 100, "TEXT": "X's"})
    Ingestor(remote).ingest(build_post(r1_seed, {"CREATED_TIME": NOW - 50,
                                                 "SHARED_POST": inner.decode()}))
    Identities(remote).pub_path(x.fingerprint).unlink()  # ... and has forgotten it since
    d_seed = crypto.new_signing_seed()
    d = keys.certify(d_seed, crypto.transport_public(crypto.new_transport_secret()))
    node = make_admin_client(copy_identities(ids.template, tmp_path / "n", [ids.a1, ids.a2]))
    r_log: list[tuple[str, str]] = []
    d_log: list[tuple[str, str]] = []
    with serving(recorder(create_peer_app({"data_dir": str(remote.root)}), r_log)) as r_addr, \
            serving(recorder(key_only_node(d.to_bytes(), d.fingerprint), d_log)) as d_addr:
        for fp, address, me in ((ids.r1, r_addr, ids.a1), (ids.r2, r_addr, ids.a2),
                                (d.fingerprint, d_addr, ids.a2)):
            r = node.put(f"/contacts/{fp}", json={"address": address, "identity": me})
            assert r.status_code == 200, r.get_json()
        r_log.clear()
        d_log.clear()
        yield World(node, r_log, d_log, x.fingerprint, d.fingerprint)


def test_lookups_for_one_persona_never_reach_another_personas_contacts(
        world: World, ids: Ids) -> None:
    r = world.node.post("/sync")
    assert r.status_code == 200, r.get_json()
    states = {s["fingerprint"]: s for s in r.get_json()["statuses"]}
    assert states[ids.r1]["last_error"] is None and states[ids.r2]["last_error"] is None
    assert f"/identities/{world.x}" not in [p for p, _ in world.d_log]
    assert [p for p, _ in world.d_log] == [f"/feeds/{world.d}"]  # only its own feed request
    assert not world.node.identities.exists(world.x)


def test_requests_as_different_personas_share_no_connection(world: World, ids: Ids) -> None:
    for _ in range(2):
        r = world.node.post("/sync")
        assert r.status_code == 200, r.get_json()
    ports = {fp: {port for path, port in world.r_log if path.endswith(fp)}
             for fp in (ids.r1, ids.r2)}
    assert ports[ids.r1] and ports[ids.r2]
    assert not ports[ids.r1] & ports[ids.r2]
