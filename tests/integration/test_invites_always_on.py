"""Invites and the always-on node with real processes on 127.0.0.1 (issue 13): Ahmed's
laptop node and his server node hold the same identity; Basant accepts Ahmed's invite
(one invite, a mutual follow); Ahmed posts on the laptop; the two nodes sync; the
laptop stops; Basant still receives the post, from the server; the laptop comes back
and sees Basant's reply. Everything goes through the admin APIs; nothing is mocked.
(The network-namespace variant is the LAN/NAT work's.)"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from .harness import Node

pytestmark = [pytest.mark.integration, pytest.mark.slow]
PW = "pw-ahmed-long-enough"
PW_B = "pw-basant-long-enough"
SETTINGS = {"sync_interval": 3600}  # every sync here is asked for; the scheduler stays out


def call(node: Node, method: str, path: str, status: int = 200, **kw: Any) -> Any:
    r = node.admin(method, path, **kw)
    assert r.status_code == status, (node.name, method, path, r.status_code, r.text)
    return r.json() if r.content else None


def invite_state(node: Node, fp: str) -> str:
    contact = call(node, "GET", f"/contacts/{fp}")
    return str(contact["invite"]["state"])


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Node]]:
    root = tmp_path_factory.mktemp("always-on")
    made = {n: Node(root / n, n, settings=SETTINGS) for n in ("laptop", "server", "basant")}
    try:
        for n in made.values():
            n.start(wait=False)
        for n in made.values():
            n.wait_ready()
        yield made
    finally:
        for n in made.values():
            n.stop()


def test_invite_then_always_on_node(nodes: dict[str, Node]) -> None:
    laptop, server, basant = nodes["laptop"], nodes["server"], nodes["basant"]
    ahmed = call(laptop, "POST", "/identities", 201, json={"password": PW})["fingerprint"]
    bfp = call(basant, "POST", "/identities", 201, json={"password": PW_B})["fingerprint"]

    # the server becomes another node of Ahmed's identity and pulls his feed
    export = call(laptop, "GET", f"/identities/{ahmed}/export")
    done = call(server, "POST", "/identities/imports", json={"export": export, "password": PW})
    assert done["nodes"] == [laptop.peer_url]
    [own] = call(server, "POST", "/sync", json={})["own_nodes"]
    assert own["last_error"] is None and own["address"] == laptop.peer_url
    assert call(server, "GET", "/sync")["own_nodes"][0]["state"] == "ok"

    # one invite from the laptop names both nodes and makes a mutual follow
    invite = call(laptop, "POST", "/invites", json={"password": PW})
    assert invite["addresses"] == [laptop.peer_url, server.peer_url]
    contact = call(basant, "POST", "/contacts", json={"invite": invite["invite"]})
    assert contact["addresses"] == [laptop.peer_url, server.peer_url]
    assert invite_state(basant, ahmed) == "waiting"
    [st] = call(basant, "POST", "/sync", json={"fingerprint": ahmed})["statuses"]
    assert st["last_error"] is None
    assert invite_state(laptop, bfp) == "waiting"          # followed back, not pulled yet
    assert call(laptop, "GET", "/invites")["invites"][0]["used_by"] == bfp
    [st] = call(laptop, "POST", "/sync", json={"fingerprint": bfp})["statuses"]
    assert st["last_error"] is None
    assert invite_state(laptop, bfp) == "connected"
    assert invite_state(basant, ahmed) == "connected"

    # Ahmed posts on the laptop; the server pulls it
    sha = call(laptop, "POST", "/posts", 201,
               json={"fingerprint": ahmed, "password": PW, "text": "posted on the laptop"})["sha1"]
    [own] = call(server, "POST", "/sync", json={})["own_nodes"]
    assert own["last_error"] is None   # (the scheduler's first run may have pulled it already)
    call(server, "GET", f"/posts/{sha}")

    # the laptop stops: Basant gets the post from the server
    laptop.stop()
    [st] = call(basant, "POST", "/sync", json={"fingerprint": ahmed})["statuses"]
    assert st["last_error"] is None and st["address"] == server.peer_url
    assert call(basant, "GET", f"/posts/{sha}")["author"] == ahmed

    # Basant replies; the laptop comes back and sees the reply
    reply = call(basant, "POST", "/posts", 201, json={
        "fingerprint": bfp, "password": PW_B, "text": "got it while you slept",
        "reply_to": sha})["sha1"]
    laptop.start()
    [st] = call(laptop, "POST", "/sync", json={"fingerprint": bfp})["statuses"]
    assert st["last_error"] is None
    got = call(laptop, "GET", f"/posts/{reply}")
    assert got["author"] == bfp and got["attributes"]["TEXT"]["value"] == "got it while you slept"
