"""A real node (gunicorn admin + peer and the scheduler, started from the Procfile) over HTTP.

The checks of keys here use plain PyNaCl, hashlib and base64 following
docs/protocol.md, not the project's own code, so a bug shared by the code and
its unit tests cannot hide.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import signal
import stat
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import nacl.public
import nacl.pwhash
import nacl.secret
import nacl.signing
import pytest
import requests

from .conftest import NodeFactory
from .harness import Node, parse_procfile, start_all

pytestmark = pytest.mark.integration

PASSWORD = "correct horse battery staple"
# as written in docs/protocol.md, "Signatures"
CTX_DEVICE_CERT = b"diwan/v2/device-certificate\x00"
CTX_USER_SIGNATURE = b"diwan/v2/user-signature\x00"
MAX_BODY = 4096
FP_HEX = set("0123456789abcdef")


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Any:
    root = tmp_path_factory.mktemp("http") / "data"
    with Node(root, "http", workers=2, threads=4, settings={"admin_max_body": MAX_BODY}) as n:
        yield n


@pytest.fixture(scope="module")
def own(node: Node) -> str:
    r = node.admin("POST", "/identities", json={"password": PASSWORD})
    assert r.status_code == 201, r.text
    return str(r.json()["fingerprint"])


# --- independent readers of the formats (plain nacl) -------------------------------------

def _b64(text: str | bytes) -> bytes:
    raw = text.encode() if isinstance(text, str) else text
    return base64.urlsafe_b64decode(raw + b"=" * (-len(raw) % 4))


def b64e(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def pub_document(seed: nacl.signing.SigningKey, transport: bytes, device: str = "0" * 16,
                 serial: int = 1) -> str:
    """A one-device .pub document, made from the text of docs/protocol.md."""
    sign = bytes(seed.verify_key)
    cert = seed.sign(CTX_DEVICE_CERT + sign + device.encode() + serial.to_bytes(8, "big")
                     + transport).signature
    return (f"diwan-public-key-v2\nsign {b64e(sign)}\n"
            f"device {device} {serial} {b64e(transport)} {b64e(cert)}\n")


def parse_pub_independently(doc: bytes) -> tuple[bytes, bytes, bytes]:
    """(sign, first transport key, its certificate) from a .pub document, checking it."""
    lines = doc.split(b"\n")
    assert len(lines) == 4 and lines[3] == b"" and lines[0] == b"diwan-public-key-v2"
    label, sign_b64 = lines[1].split(b" ")
    assert label == b"sign"
    label, device, serial, transport_b64, cert_b64 = lines[2].split(b" ")
    assert label == b"device" and len(device) == 16
    sign, transport, cert = _b64(sign_b64), _b64(transport_b64), _b64(cert_b64)
    assert (len(sign), len(transport), len(cert)) == (32, 32, 64)
    nacl.signing.VerifyKey(sign).verify(
        CTX_DEVICE_CERT + sign + device + int(serial).to_bytes(8, "big") + transport, cert)
    return sign, transport, cert


def open_private_independently(data: bytes, password: str) -> tuple[bytes, bytes]:
    """(seed, transport secret) from a private key file, with plain Argon2id + SecretBox."""
    doc = json.loads(data)
    kdf = doc["kdf"]
    assert doc["format"] == "diwan-private-key-v2" and kdf["alg"] == "argon2id13"
    key = nacl.pwhash.argon2id.kdf(32, password.encode(), _b64(kdf["salt"]),
                                   opslimit=kdf["opslimit"], memlimit=kdf["memlimit"])
    seed = nacl.secret.SecretBox(key).decrypt(_b64(doc["sealed_seed"]))
    return seed, _b64(doc["transport"][-1]["secret"])


def _listening(port: int) -> list[str]:
    """Local addresses (hex, as in /proc/net/tcp*) of LISTEN sockets on ``port``."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            address, _, hex_port = fields[1].rpartition(":")
            if fields[3] == "0A" and int(hex_port, 16) == port:
                found.append(address)
    return found


def _error(r: requests.Response, status: int, field: str | None = None) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    body = r.json()
    assert body["code"] == status and body["message"] and body["status"]
    if field:
        assert field in body["errors"], body
    return dict(body)


# --- the processes --------------------------------------------------------------------------

def test_the_procfile_processes_run(node: Node) -> None:
    assert set(node.procs) == set(parse_procfile()) == {"admin", "peer", "scheduler"}
    assert all(node.alive(name) for name in node.procs)
    assert len(node.group_pids("admin")) == 3  # master + 2 workers
    alive = node.root / "state" / "scheduler.alive"
    assert float(alive.read_text()) > 0
    assert node.admin("GET", "/health", auth=False).json() == {"status": "ok", "app": "admin"}
    assert node.peer("GET", "/health").json() == {"status": "ok", "app": "peer"}


def test_admin_port_is_bound_to_loopback_only(node: Node) -> None:
    assert node.admin_port is not None and node.peer_port is not None
    assert _listening(node.admin_port) == ["0100007F"]  # 127.0.0.1, and nothing on IPv6
    assert _listening(node.peer_port) == ["0100007F"]   # the tests set peer_host = 127.0.0.1


def test_data_directory_was_initialised_on_start(node: Node) -> None:
    token = node.root / "admin.token"
    assert stat.S_IMODE(token.stat().st_mode) == 0o600
    assert len(node.token) == 64 and set(node.token) <= FP_HEX
    for sub in ("identities", "identities/blocked", "posts", "state"):
        assert stat.S_IMODE((node.root / sub).stat().st_mode) & 0o077 == 0, sub


def test_guard_over_http(node: Node) -> None:
    _error(node.admin("GET", "/identities", auth=False), 401)
    _error(node.admin("GET", "/identities", headers={"Authorization": "Bearer " + "0" * 64}), 401)
    _error(node.admin("GET", "/identities", headers={"Host": "evil.com"}), 403)
    _error(node.admin("GET", "/identities", headers={"Origin": "http://evil.example"}), 403)
    _error(node.admin("GET", "/identities", headers={"Sec-Fetch-Site": "cross-site"}), 403)
    for host in ("localhost:8888", "127.0.0.1", "[::1]"):
        assert node.admin("GET", "/identities", headers={"Host": host}).status_code == 200


# --- identities -----------------------------------------------------------------------------

def test_create_and_check_independently(node: Node, own: str) -> None:
    private = node.root / "identities" / own
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    r = node.admin("GET", f"/identities/{own}")
    assert r.status_code == 200 and r.json()["own"] is True
    doc = r.json()["public_key"].encode("ascii")
    assert doc == (node.root / "identities" / f"{own}.pub").read_bytes()
    sign, transport, _ = parse_pub_independently(doc)
    assert hashlib.sha256(sign).hexdigest() == own
    seed, transport_secret = open_private_independently(private.read_bytes(), PASSWORD)
    assert bytes(nacl.signing.SigningKey(seed).verify_key) == sign
    assert bytes(nacl.public.PrivateKey(transport_secret).public_key) == transport
    assert node.peer("GET", f"/identities/{own}").content == doc


def test_sign_verifies_with_plain_nacl_and_touches_the_pub(node: Node, own: str) -> None:
    pub = node.root / "identities" / f"{own}.pub"
    os.utime(pub, (1_000_000, 1_000_000))
    content = "a post, signed ✓"
    r = node.admin("POST", f"/identities/{own}/sign", json={"password": PASSWORD,
                                                             "content": content})
    assert r.status_code == 200, r.text
    sign, _, _ = parse_pub_independently(pub.read_bytes())
    signature = _b64(r.json()["signature"])
    nacl.signing.VerifyKey(sign).verify(CTX_USER_SIGNATURE + content.encode(), signature)
    assert r.json()["context"] == "diwan/v2/user-signature"
    assert bytes.fromhex(r.json()["signature_hex"]) == signature
    assert pub.stat().st_mtime > 1_000_000
    listed = {i["fingerprint"]: i for i in node.admin("GET", "/identities").json()["identities"]}
    assert listed[own]["last_used"] > 1_000_000


def test_wrong_password_is_403_and_changes_nothing(node: Node, own: str) -> None:
    private = node.root / "identities" / own
    before = private.read_bytes()
    for method, path, body in [
        ("POST", f"/identities/{own}/sign", {"password": "wrong", "content": "x"}),
        ("POST", f"/identities/{own}/password",
         {"old_password": "wrong", "new_password": "a new long password"}),
        ("POST", f"/identities/{own}/transport", {"password": "wrong"}),
        ("DELETE", f"/identities/{own}", {"password": "wrong"}),
    ]:
        assert _error(node.admin(method, path, json=body), 403)["status"] == "wrong_password"
    assert private.read_bytes() == before


def test_import_list_and_delete_a_foreign_key(node: Node) -> None:
    seed = nacl.signing.SigningKey.generate()
    sign = bytes(seed.verify_key)
    transport = bytes(nacl.public.PrivateKey.generate().public_key)
    doc = pub_document(seed, transport)
    r = node.admin("POST", "/identities", json={"public_key": doc})
    assert r.status_code == 201, r.text
    fp = hashlib.sha256(sign).hexdigest()
    assert r.json() == {"fingerprint": fp, "own": False}
    assert (node.root / "identities" / f"{fp}.pub").read_text() == doc
    fps = [i["fingerprint"] for i in node.admin("GET", "/identities").json()["identities"]]
    assert fp in fps
    forged = doc.replace(b64e(transport),
                         b64e(bytes(nacl.public.PrivateKey.generate().public_key)))
    _error(node.admin("POST", "/identities", json={"public_key": forged}), 400, "public_key")
    assert node.admin("DELETE", f"/identities/{fp}").status_code == 204
    _error(node.admin("GET", f"/identities/{fp}"), 404)


def test_change_password_then_delete(node: Node) -> None:
    one, two = "password one", "password two"
    fp = node.admin("POST", "/identities", json={"password": one}).json()["fingerprint"]
    private = node.root / "identities" / fp
    _, transport_before, _ = parse_pub_independently(private.with_suffix(".pub").read_bytes())
    r = node.admin("POST", f"/identities/{fp}/password",
                   json={"old_password": one, "new_password": two})
    assert r.status_code == 200, r.text
    seed, transport = open_private_independently(private.read_bytes(), two)
    assert hashlib.sha256(bytes(nacl.signing.SigningKey(seed).verify_key)).hexdigest() == fp
    _, published, _ = parse_pub_independently(private.with_suffix(".pub").read_bytes())
    assert published != transport_before            # the password change rotated it
    assert bytes(nacl.public.PrivateKey(transport).public_key) == published
    _error(node.admin("POST", f"/identities/{fp}/sign", json={"password": one, "content": "x"}),
           403)
    _error(node.admin("DELETE", f"/identities/{fp}"), 403)
    assert node.admin("DELETE", f"/identities/{fp}", json={"password": two}).status_code == 204
    assert not private.exists() and not private.with_suffix(".pub").exists()


@pytest.mark.parametrize(("method", "path", "body", "status", "field"), [
    ("GET", "/identities/abc", None, 400, "fp"),
    ("GET", "/identities/" + "0" * 65, None, 400, "fp"),
    ("GET", "/identities/" + "A" * 64, None, 400, "fp"),
    ("GET", "/identities/%2e%2e", None, 400, "fp"),
    ("GET", "/identities/" + "0" * 64, None, 404, "fingerprint"),
    ("POST", "/identities/" + "0" * 64 + "/sign", {"password": "x", "content": "y"}, 404, None),
    ("POST", "/identities", {"password": "x" * 12, "colour": "red"}, 400, "colour"),
    ("POST", "/identities", {"password": "x" * 11}, 400, "password"),
    ("POST", "/identities", {}, 400, "_schema"),
    ("POST", "/identities", {"public_key": "diwan-public-key-v1\n"}, 400, "public_key"),
    ("PUT", "/groups/%2e%2e", None, 400, "name"),
    ("PUT", "/groups/Friends", None, 400, "name"),
    ("GET", "/groups/nosuch", None, 404, "name"),
    ("DELETE", "/groups/blocked", None, 403, "name"),
])
def test_bad_inputs_over_http(node: Node, method: str, path: str, body: Any, status: int,
                              field: str | None) -> None:
    _error(node.admin(method, path, json=body), status, field)


def test_path_separators_never_reach_the_disk(node: Node) -> None:
    before = sorted(os.listdir(node.root))
    for path in ("/groups/a%2Fb", "/groups/..%2F..%2Fetc", "/identities/..%2Fadmin.token",
                 "/groups/%2e%2e/" + "0" * 64):
        for method in ("GET", "PUT", "DELETE"):
            r = node.admin(method, path)
            assert 400 <= r.status_code < 500, (method, path, r.status_code)
    assert sorted(os.listdir(node.root)) == before


def test_body_size_limit_at_the_edge(node: Node) -> None:
    head, tail = b'{"public_key": "', b'"}'

    def body(size: int) -> bytes:
        return head + b"x" * (size - len(head) - len(tail)) + tail

    headers = {"Content-Type": "application/json"}
    _error(node.admin("POST", "/identities", data=body(MAX_BODY), headers=headers), 400,
           "public_key")
    _error(node.admin("POST", "/identities", data=body(MAX_BODY + 1), headers=headers), 413)

    def chunks() -> Any:
        yield head
        for _ in range(MAX_BODY // 512 + 1):
            yield b"x" * 512
        yield tail

    _error(node.admin("POST", "/identities", data=chunks(), headers=headers), 413)


def test_groups_and_blocking_over_http(node: Node, own: str) -> None:
    seed = nacl.signing.SigningKey.generate()
    doc = pub_document(seed, bytes(nacl.public.PrivateKey.generate().public_key))
    fp = node.admin("POST", "/identities", json={"public_key": doc}).json()["fingerprint"]

    assert node.admin("PUT", "/groups/friends").json()["changed"] is True
    assert node.admin("PUT", f"/groups/friends/{fp}").json()["changed"] is True
    assert (node.root / "identities" / "friends" / f"{fp}.pub").read_text() == doc
    assert node.admin("GET", "/groups/friends").json()["members"] == [fp]
    groups = {g["name"] for g in node.admin("GET", "/groups").json()["groups"]}
    assert {"friends", "blocked"} <= groups
    assert node.admin("DELETE", f"/groups/friends/{fp}").status_code == 204
    assert node.admin("DELETE", "/groups/friends").status_code == 204

    unknown = node.peer("GET", "/identities/" + "0" * 64)
    held = node.peer("GET", f"/identities/{fp}")  # someone else's key: not handed out
    assert node.admin("PUT", f"/groups/blocked/{fp}").status_code == 200
    assert node.admin("GET", f"/identities/{fp}").json()["blocked"] is True
    blocked = node.peer("GET", f"/identities/{fp}")
    assert {(r.status_code, r.content) for r in (unknown, held, blocked)} == {
        (404, unknown.content)}  # one identical 404: no oracle (issue 8, attack 4)
    _error(node.admin("PUT", f"/groups/blocked/{own}"), 409, "fingerprint")
    assert node.admin("DELETE", f"/groups/blocked/{fp}").status_code == 204


def test_peer_api_has_no_admin_routes(node: Node, own: str) -> None:
    assert node.peer("GET", "/groups").status_code == 404
    assert node.peer("GET", "/identities").status_code in (404, 405)
    assert node.peer("POST", f"/identities/{own}/sign",
                     json={"password": PASSWORD, "content": "x"}).status_code in (404, 405)
    r = node.peer("GET", f"/identities/{own}")
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/plain")
    _error(node.peer("GET", "/identities/zz"), 400, "fp")


def test_openapi_over_http(node: Node) -> None:
    spec = node.admin("GET", "/openapi.json", auth=False).json()
    assert {"/identities", "/identities/{fp}", "/identities/{fp}/sign",
            "/identities/{fp}/password", "/identities/{fp}/transport", "/groups", "/groups/{name}",
            "/groups/{name}/{fp}"} <= set(spec["paths"])


# --- crash safety -----------------------------------------------------------------------------

def test_kill_9_during_a_burst_of_creations_leaves_only_whole_files(
        make_node: NodeFactory) -> None:
    from app.core.identity import keys  # the node's own readers must accept what is on disk, too
    from app.core.identity.identities import Identities

    # real Argon2id cost here (the switch off): creations take long enough for the kill to land
    node = make_node("crash", workers=1, threads=4, env={"DIWAN_INSECURE_KDF": "0"})
    identities = node.root / "identities"
    acknowledged: list[tuple[str, str]] = []
    lock = threading.Lock()

    def create(i: int) -> None:
        try:
            r = node.admin("POST", "/identities", json={"password": f"password-{i:04d}"},
                           timeout=20)
        except requests.RequestException:
            return
        if r.status_code == 201:
            with lock:
                acknowledged.append((r.json()["fingerprint"], f"password-{i:04d}"))

    with ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(create, i) for i in range(24)]
        deadline = time.monotonic() + 20
        while len(acknowledged) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        node.kill("admin", signal.SIGKILL)               # the gunicorn master ...
        node.kill("admin", signal.SIGKILL, group=True)   # ... and its workers, mid-request
        for f in futures:
            f.result()
    assert node.wait_exit("admin") == -signal.SIGKILL
    assert 2 <= len(acknowledged) < 24, "the kill did not land during the burst"

    pubs, privates, hidden = set(), set(), []
    for entry in identities.iterdir():
        if entry.name.startswith("."):
            hidden.append(entry.name)                      # temporaries: readers skip them
        elif entry.is_dir():
            assert entry.name == "blocked"
        elif entry.name.endswith(".pub"):
            fp = entry.name[:-4]
            sign, _, _ = parse_pub_independently(entry.read_bytes())
            assert hashlib.sha256(sign).hexdigest() == fp
            keys.parse_pub(entry.read_bytes(), expected_fp=fp)
            pubs.add(fp)
        else:
            assert len(entry.name) == 64 and set(entry.name) <= FP_HEX, entry.name
            assert stat.S_IMODE(entry.stat().st_mode) == 0o600
            assert keys.parse_private(entry.read_bytes()).fingerprint == entry.name
            privates.add(entry.name)
    assert all(name.startswith(".tmp-") for name in hidden), hidden
    assert pubs <= privates  # the private file is written first
    for fp, password in acknowledged:  # every acknowledged identity is whole and opens
        assert fp in pubs
        seed, _ = open_private_independently((identities / fp).read_bytes(), password)
        assert hashlib.sha256(bytes(nacl.signing.SigningKey(seed).verify_key)).hexdigest() == fp

    from app.core.base.datadir import DataDir
    assert {i.fingerprint for i in Identities(DataDir(node.root, environ={})).list()} == pubs

    node.restart()
    listed = node.admin("GET", "/identities").json()["identities"]
    assert {i["fingerprint"] for i in listed} == pubs
    assert all(i["own"] for i in listed)


# --- several nodes at once ----------------------------------------------------------------------

def test_two_nodes_side_by_side_exchange_a_key(make_node: NodeFactory) -> None:
    alice, bob = start_all([make_node("alice", start=False), make_node("bob", start=False)])
    assert len({alice.admin_port, alice.peer_port, bob.admin_port, bob.peer_port}) == 4
    assert alice.token != bob.token
    _error(bob.admin("GET", "/identities", headers={"Authorization": f"Bearer {alice.token}"}),
           401)
    fp = alice.admin("POST", "/identities", json={"password": "a long password"}
                     ).json()["fingerprint"]
    doc = bob.session.get(f"{alice.peer_url}/identities/{fp}", timeout=10)
    assert doc.status_code == 200
    r = bob.admin("POST", "/identities", json={"public_key": doc.text})
    assert r.status_code == 201 and r.json() == {"fingerprint": fp, "own": False}
    assert (bob.root / "identities" / f"{fp}.pub").read_bytes() == \
        (alice.root / "identities" / f"{fp}.pub").read_bytes()
    assert not (bob.root / "identities" / fp).exists()
