"""Key-server flood (issue 10, item 6): no one network prefix can fill the key cap.

One IPv6 /48 holds 65,536 /64s; before, each /64 had its own hourly rate and
nothing bounded what one network held, so one attacker filled the cap and every
legitimate upload got 507. Now each /64 (IPv4 address) and each /48 (IPv4 /24)
holds a bounded share, and uploaded keys that nobody fetched expire.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from flask.testing import FlaskClient

from app import create_peer_app
from app.core.base import crypto
from app.core.identity import keys
from app.core.network import keyserver
from tests.helpers.clients import assert_error

CAP = 40
T0 = 1_700_000_000


def _doc(n: int) -> bytes:
    seed = hashlib.sha256(f"flood-{n}".encode()).digest()
    return keys.certify(seed, crypto.transport_public(hashlib.sha256(seed).digest())).to_bytes()


def _server(root: Path, **settings: Any) -> FlaskClient:
    return create_peer_app({"data_dir": str(root), "key_server": True,
                            "key_server_max_keys": CAP, **settings}).test_client()


def _upload(client: FlaskClient, n: int, addr: str) -> Any:
    return client.post("/identities", data=_doc(n), content_type="text/plain",
                       environ_base={"REMOTE_ADDR": addr})


def test_one_ipv6_48_cannot_fill_the_cap(tmp_path: Path) -> None:
    client = _server(tmp_path / "ks")
    stored = 0
    for n in range(CAP * 2):  # a new /64 of the same /48 for every upload
        r = _upload(client, n, f"2001:db8:7:{n:x}::1")
        stored += r.status_code == 201
        assert r.status_code in (201, 429), r.json
    assert stored == CAP // 10  # a tenth of the cap at most
    assert _upload(client, 10_000, "2001:db8:8::1").status_code == 201  # another network


def test_one_ipv4_24_cannot_fill_the_cap(tmp_path: Path) -> None:
    client = _server(tmp_path / "ks")
    codes = [_upload(client, n, f"198.51.100.{n}").status_code for n in range(CAP)]
    assert codes.count(201) == CAP // 10 and set(codes) == {201, 429}
    assert _upload(client, 10_000, "203.0.113.1").status_code == 201


def test_one_64_holds_its_own_share(tmp_path: Path) -> None:
    client = _server(tmp_path / "ks", key_server_keys_per_address=2, key_server_rate=100)
    codes = [_upload(client, n, "2001:db8:1:2::1").status_code for n in range(4)]
    assert codes == [201, 201, 429, 429]
    assert _upload(client, 9, "2001:db8:1:3::1").status_code == 201  # a neighbour /64


def test_the_48_hourly_rate(tmp_path: Path) -> None:
    client = _server(tmp_path / "ks", key_server_prefix_rate=3)
    codes = [_upload(client, n, f"2001:db8:9:{n:x}::1").status_code for n in range(5)]
    assert codes == [201, 201, 201, 429, 429]
    assert_error(_upload(client, 99, "2001:db8:9:ff::1"), 429)


def test_unfetched_uploads_expire_and_fetched_ones_stay(tmp_path: Path) -> None:
    client = _server(tmp_path / "ks")
    dd = client.application.config["DIWAN"]
    fetched, unfetched = _doc(1), _doc(2)
    fps = [keys.parse_pub(d).fingerprint for d in (fetched, unfetched)]
    for n, addr in ((1, "192.0.2.1"), (2, "198.51.100.1")):
        assert _upload(client, n, addr).status_code == 201
    assert client.get(f"/identities/{fps[0]}").status_code == 200
    later = T0 * 2  # long after the uploads
    assert keyserver.expire_unfetched(dd, now=later) == 1
    assert keyserver.uploaded_document(dd, fps[0]) == fetched
    assert keyserver.uploaded_document(dd, fps[1]) is None
    assert client.get(f"/identities/{fps[1]}").status_code == 404


def test_a_full_store_makes_room_by_expiring_unfetched_keys(tmp_path: Path) -> None:
    client = _server(tmp_path / "ks", key_server_max_keys=10, key_server_unfetched_days=0)
    for n in range(10):
        assert _upload(client, n, f"10.{n}.0.1").status_code == 201
    # nobody fetched them: the next upload expires them instead of getting 507
    assert _upload(client, 50, "10.99.0.1").status_code == 201
