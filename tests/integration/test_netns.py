"""Real networks in namespaces (issue 13): a LAN with mDNS, a home router with UPnP and NAT
reached from an invite string, and an always-on server holding the laptop's identity.

Each test builds its own namespaces (:mod:`.netns`), runs real nodes in them
(gunicorn and the scheduler, from the Procfile) and removes everything however
it ends. Without root, ``ip``, ``nft`` or ``miniupnpd`` they skip naming what
is missing; under ``CI=true`` they fail instead (.ci/run installs the tools).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .netns import Lab, NsNode, require, tool

pytestmark = [pytest.mark.integration, pytest.mark.slow]
PW = "a long password for the lab"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def lab() -> Iterator[Lab]:
    made = Lab()
    try:
        yield made
    finally:
        made.close()


def _ok(r: Any, *codes: int) -> Any:
    assert r.status_code in (codes or (200,)), (r.status_code, r.text)
    return r.json() if r.content else None


def identity(node: NsNode) -> str:
    return str(_ok(node.admin("POST", "/identities", json={"password": PW}), 201)["fingerprint"])


def post(node: NsNode, fp: str, text: str) -> str:
    return str(_ok(node.admin("POST", "/posts", json={"fingerprint": fp, "password": PW,
                                                       "text": text}), 201)["sha1"])


def follow(node: NsNode, me: str, other: str, address: str) -> None:
    _ok(node.admin("PUT", f"/contacts/{other}", json={"address": address, "identity": me}),
        200, 201)


def sync(node: NsNode, other: str) -> dict[str, Any]:
    statuses = _ok(node.admin("POST", "/sync", json={"fingerprint": other}))["statuses"]
    return dict(statuses[0])


def has(node: NsNode, sha: str) -> bool:
    return node.admin("GET", f"/posts/{sha}").status_code == 200


LAN_SETTINGS = {"peer_host": "::", "lan_discovery": True, "lan_browse_time": 2,
                "lan_browse_cache": 0, "sync_timeout": 3, "sync_interval": 600}


def test_a_friend_who_moved_on_the_lan_is_found_by_mdns(lab: Lab, tmp_path: Path) -> None:
    """Basant's node restarts at a new address; Ahmed's finds her by her blinded tag and
    syncs, nobody typing an address; Eve, who knows no fingerprint, sees opaque tags."""
    require("ip")
    sw = lab.switch()
    hosts = {name: lab.ns(name) for name in ("ahmed", "basant", "eve")}
    for n, ns in enumerate(hosts.values(), start=2):
        lab.plug(sw, ns, f"10.13.0.{n}/24")
    ahmed = NsNode(lab, hosts["ahmed"], tmp_path / "ahmed", "ahmed", settings=LAN_SETTINGS)
    basant = NsNode(lab, hosts["basant"], tmp_path / "basant", "basant",
                    settings=LAN_SETTINGS)
    try:
        ahmed.start(wait=False)
        basant.start()
        ahmed.wait_ready()
        a, b = identity(ahmed), identity(basant)
        first = post(basant, b, "before the move")
        follow(ahmed, a, b, f"http://10.13.0.3:{basant.peer_port}")
        assert sync(ahmed, b)["last_error"] is None and has(ahmed, first)

        basant.stop()  # Basant's laptop gets a new address from the router
        before = basant.log("scheduler").count("LAN announcement: ")  # 0 if stopped early
        lab.ip("-n", hosts["basant"], "addr", "flush", "dev", "eth0")
        lab.ip("-n", hosts["basant"], "addr", "add", "10.13.0.77/24", "dev", "eth0")
        basant.start()
        _wait_for(lambda: basant.log("scheduler").count("LAN announcement: ") > before,
                  "Basant's node announced again", basant)
        second = post(basant, b, "after the move")
        status = sync(ahmed, b)
        assert status["last_error"] is None, status
        assert has(ahmed, second)
        moved = f"http://10.13.0.77:{basant.peer_port}"
        contact = _ok(ahmed.admin("GET", f"/contacts/{b}"))
        assert moved in contact["learned"], contact
        assert contact["addresses"] == [f"http://10.13.0.3:{basant.peer_port}"]

        from app.core.network import lan

        heard = _eve_listens(lab, hosts["eve"])
        assert len(heard) == 2, heard  # Ahmed's and Basant's nodes
        today = lan.utc_day(time.time())
        for seen in heard:
            assert set(seen["txt"]) == {"v"} | {f"t{i}" for i in range(8)}
            assert a not in json.dumps(seen) and b not in json.dumps(seen)
            assert "ahmed" not in json.dumps(seen) and "basant" not in json.dumps(seen)
        tags = [set(seen["tags"]) for seen in heard]
        assert sum(lan.tag(b, today) in t for t in tags) == 1  # who knows b can tell
        stranger = "5" * 64
        assert not any(lan.tag(stranger, today) in t for t in tags)
    finally:
        ahmed.stop()
        basant.stop()


def _eve_listens(lab: Lab, ns: str) -> list[dict[str, Any]]:
    """What a third host on the LAN hears: every announcement, as printed JSON."""
    script = (
        "import json; from app.core.network import lan\n"
        "heard = lan.browse(['10.13.0.4'], 3)\n"
        "print(json.dumps([{'name': s.name, 'urls': list(s.urls), 'tags': sorted(s.tags),\n"
        "    'txt': sorted(['v'] + ['t%d' % i for i in range(len(s.tags))])}\n"
        "    for s in heard]))\n")
    out = lab.run(ns, sys.executable, "-c", script, cwd=REPO)
    assert out.returncode == 0, out.stderr
    return list(json.loads(out.stdout))


MINIUPNPD_CONF = """\
ext_ifname=wan0
ext_ip={ext}
listening_ip=lan0
http_port=5000
enable_upnp=yes
enable_natpmp=no
secure_mode=yes
system_uptime=no
uuid=3d3cec3a-8cf0-11e0-98ee-001a6bd2d07b
upnp_table_name=filter
upnp_nat_table_name=filter
upnp_forward_chain=miniupnpd
upnp_nat_chain=prerouting_miniupnpd
upnp_nat_postrouting_chain=postrouting_miniupnpd
allow 1024-65535 192.168.13.0/24 1024-65535
deny 0-65535 0.0.0.0/0 0-65535
"""

# The router: forwards home -> internet with masquerade; internet -> home only what
# miniupnpd adds to its chains.
ROUTER_NFT = """\
table inet filter {
  chain forward {
    type filter hook forward priority 0; policy drop;
    ct state established,related accept
    iifname "lan0" oifname "wan0" accept
    jump miniupnpd
  }
  chain miniupnpd {
  }
  chain prerouting {
    type nat hook prerouting priority -100; policy accept;
    jump prerouting_miniupnpd
  }
  chain postrouting {
    type nat hook postrouting priority 100; policy accept;
    jump postrouting_miniupnpd
    oifname "wan0" masquerade
  }
  chain prerouting_miniupnpd {
  }
  chain postrouting_miniupnpd {
  }
}
"""
EXT = "11.13.0.1"  # miniupnpd refuses a private or reserved external address


def test_a_node_behind_a_home_router_is_reached_through_its_upnp_mapping(
        lab: Lab, tmp_path: Path) -> None:
    """Ahmed's node at home maps its peer port on the router (miniupnpd, NAT by nftables);
    Ahmed's invite carries the mapped public address; Camal's node on the internet side
    follows him from the invite string alone and gets his post; the invite's one-time
    token makes Ahmed's node follow Camal back (out through the NAT) and get his; when
    Ahmed's node stops, the mapping is gone."""
    require("ip", "nft", "miniupnpd")
    router, home, net = lab.ns("router"), lab.ns("home"), lab.ns("net")
    lab.link(router, "lan0", home, "eth0")
    lab.link(router, "wan0", net, "eth0")
    lab.ip("-n", router, "addr", "add", "192.168.13.1/24", "dev", "lan0")
    lab.ip("-n", router, "addr", "add", f"{EXT}/24", "dev", "wan0")
    lab.ip("-n", home, "addr", "add", "192.168.13.2/24", "dev", "eth0")
    lab.ip("-n", home, "route", "add", "default", "via", "192.168.13.1")
    lab.ip("-n", net, "addr", "add", "11.13.0.2/24", "dev", "eth0")
    assert lab.run(router, tool("sysctl"), "-qw", "net.ipv4.ip_forward=1").returncode == 0
    (tmp_path / "router.nft").write_text(ROUTER_NFT)
    loaded = lab.run(router, tool("nft"), "-f", str(tmp_path / "router.nft"))
    assert loaded.returncode == 0, loaded.stderr
    (tmp_path / "miniupnpd.conf").write_text(MINIUPNPD_CONF.format(ext=EXT))
    lab.popen(router, tool("miniupnpd"), "-d", "-f", str(tmp_path / "miniupnpd.conf"),
              "-P", str(tmp_path / "miniupnpd.pid"), log=tmp_path / "miniupnpd.log")

    home_settings = {"peer_host": "::", "port_mapping": True, "lan_discovery": False}
    net_settings = {"peer_host": "::", "lan_discovery": False, "sync_timeout": 5}
    ahmed = NsNode(lab, home, tmp_path / "ahmed", "ahmed", settings=home_settings)
    camal = NsNode(lab, net, tmp_path / "camal", "camal", settings=net_settings)
    try:
        ahmed.start(wait=False)
        camal.start()
        ahmed.wait_ready()
        mapped = _wait_for_mapping(ahmed)
        assert mapped == f"http://{EXT}:{ahmed.peer_port}"
        shown = lab.run(home, str(Path(sys.executable).parent / "diwan"), "--json",
                        "--data-dir", str(ahmed.root), "status")
        assert json.loads(shown.stdout)["peer_urls"][0] == mapped, shown  # what Ahmed hands out
        a, c = identity(ahmed), identity(camal)
        sha = post(ahmed, a, "from behind the router")
        invite = _ok(ahmed.admin("POST", "/invites", json={"password": PW}))  # one-time token
        assert invite["addresses"][0] == mapped, invite  # the mapping first, then home's
        assert invite["one_time_token"] is True
        # Camal has only the invite string: key, addresses and token come from it
        contact = _ok(camal.admin("POST", "/contacts", json={"invite": invite["invite"]}),
                      200, 201)
        assert contact["fingerprint"] == a and contact["addresses"][0] == mapped, contact
        status = sync(camal, a)
        assert status["last_error"] is None and status["address"] == mapped, status
        assert has(camal, sha)
        # the token made Ahmed's node follow Camal back, at Camal's own address, which
        # Ahmed's node reaches out through the router's masquerade
        assert _ok(ahmed.admin("GET", "/invites"))["invites"][0]["used_by"] == c
        back = _ok(ahmed.admin("GET", f"/contacts/{c}"))
        assert back["addresses"][0] == f"http://11.13.0.2:{camal.peer_port}", back
        c_sha = post(camal, c, "from the internet side")
        status = sync(ahmed, c)
        assert status["last_error"] is None, status
        assert has(ahmed, c_sha)
        assert _ok(ahmed.admin("GET", f"/contacts/{c}"))["invite"]["state"] == "connected"
        assert _ok(camal.admin("GET", f"/contacts/{a}"))["invite"]["state"] == "connected"
        assert "dport" in lab.run(router, tool("nft"), "list", "chain", "inet", "filter",
                                  "prerouting_miniupnpd").stdout
        ahmed.stop(sig=2)
        rules = lab.run(router, tool("nft"), "list", "chain", "inet", "filter",
                        "prerouting_miniupnpd").stdout
        assert "dport" not in rules, rules  # the mapping was removed on stop
    finally:
        ahmed.stop()
        camal.stop()
        log = tmp_path / "miniupnpd.log"
        if log.exists():
            print(log.read_text()[-3000:])


ALWAYS_ON_SETTINGS = {"peer_host": "::", "lan_discovery": False, "sync_timeout": 3,
                      "sync_interval": 3600}  # every sync here is asked for


def test_an_always_on_node_serves_the_feed_while_the_laptop_is_off(
        lab: Lab, tmp_path: Path) -> None:
    """Ahmed's laptop and server, two hosts, hold one identity; Basant, on a third, follows
    Ahmed from one invite; Ahmed posts on the laptop, the server pulls it; the laptop
    stops and its link goes down; Basant gets the post from the server and replies; the
    laptop comes back and gets the reply."""
    require("ip")
    sw = lab.switch()
    hosts = {name: lab.ns(name) for name in ("laptop", "server", "basant")}
    ips = {}
    for n, (name, ns) in enumerate(hosts.items(), start=2):
        lab.plug(sw, ns, f"10.13.1.{n}/24")
        ips[name] = f"10.13.1.{n}"
    laptop, server, basant = (NsNode(lab, ns, tmp_path / name, name,
                                     settings=ALWAYS_ON_SETTINGS)
                              for name, ns in hosts.items())
    at = {name: "" for name in hosts}
    try:
        for node in (laptop, server, basant):
            node.start(wait=False)
        for node in (laptop, server, basant):
            node.wait_ready()
            at[node.name] = f"http://{ips[node.name]}:{node.peer_port}"
        a, b = identity(laptop), identity(basant)

        # the server becomes another node of Ahmed's identity (export, import) and pulls
        export = _ok(laptop.admin("GET", f"/identities/{a}/export"))
        done = _ok(server.admin("POST", "/identities/imports",
                                json={"export": export, "password": PW}))
        assert done["nodes"] == [at["laptop"]], done
        [own] = _ok(server.admin("POST", "/sync", json={}))["own_nodes"]
        assert own["last_error"] is None and own["address"] == at["laptop"], own

        # one invite from the laptop names both nodes; Basant follows from it alone
        invite = _ok(laptop.admin("POST", "/invites", json={"password": PW}))
        assert invite["addresses"] == [at["laptop"], at["server"]], invite
        contact = _ok(basant.admin("POST", "/contacts", json={"invite": invite["invite"]}),
                      200, 201)
        assert contact["addresses"] == [at["laptop"], at["server"]], contact
        assert sync(basant, a)["last_error"] is None

        # Ahmed posts on the laptop; the server pulls it (own-node sync)
        sha = post(laptop, a, "posted on the laptop")
        [own] = _ok(server.admin("POST", "/sync", json={}))["own_nodes"]
        assert own["last_error"] is None, own
        assert has(server, sha)

        # the laptop stops and leaves the network; Basant gets the post from the server
        laptop.stop()
        lab.ip("-n", hosts["laptop"], "link", "set", "eth0", "down")
        status = sync(basant, a)
        assert status["last_error"] is None and status["address"] == at["server"], status
        got = _ok(basant.admin("GET", f"/posts/{sha}"))
        assert got["author"] == a

        # Basant replies; the laptop comes back and sees the reply
        reply = str(_ok(basant.admin("POST", "/posts", json={
            "fingerprint": b, "password": PW, "text": "got it while you slept",
            "reply_to": sha}), 201)["sha1"])
        lab.ip("-n", hosts["laptop"], "link", "set", "eth0", "up")
        laptop.start()
        status = sync(laptop, b)
        assert status["last_error"] is None, status
        got = _ok(laptop.admin("GET", f"/posts/{reply}"))
        assert got["author"] == b
        assert got["attributes"]["TEXT"]["value"] == "got it while you slept"
    finally:
        for node in (laptop, server, basant):
            node.stop()


def _wait_for(done: Any, what: str, node: NsNode, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError(f"not in time: {what}\n{node.log('scheduler')[-3000:]}")
        time.sleep(0.2)


def _wait_for_mapping(node: NsNode, timeout: float = 20.0) -> str:
    path = node.root / "state" / "portmap.json"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            return str(json.loads(path.read_text())["url"])
        except (FileNotFoundError, ValueError, KeyError):
            time.sleep(0.2)
    raise AssertionError(f"no port mapping in time\n{node.log('scheduler')[-3000:]}")


def test_the_lab_removes_what_it_made() -> None:
    require("ip")
    made = Lab()
    ns = made.ns("x")
    made.popen(ns, "sleep", "60", log=Path("/dev/null"))
    made.close()
    listed = subprocess.run([tool("ip"), "netns", "list"], capture_output=True, text=True).stdout
    assert ns not in listed
    assert all(p.poll() is not None for p in made.procs)


def test_a_missing_tool_skips_locally_and_fails_under_ci(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="no-such-tool-13"):
        require("no-such-tool-13")
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="no-such-tool-13"):
        require("no-such-tool-13")
