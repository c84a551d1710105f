"""One rule per input class (issue 10): numbers, times, cursors, depth.

Each test sits at the edge of its rule: the largest accepted value passes, the
next one is a 400 with the one error shape, and nothing is stored.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from app.cli import main
from app.cli.base import when
from app.core.base import crypto
from app.core.base.encoding import b64e
from app.core.identity import keys
from tests.helpers.clients import AdminClient, assert_error, make_admin_client

SAFE = 2**53 - 1
T0 = 1_700_000_000


class Author:
    """A known author whose posts are signed by hand, so P1 can hold any JSON text."""

    def __init__(self, client: AdminClient) -> None:
        self.seed = hashlib.sha256(b"hostile-author").digest()
        pub = keys.certify(self.seed, crypto.transport_public(hashlib.sha256(self.seed).digest()))
        (client.dd.identities / f"{pub.fingerprint}.pub").write_bytes(pub.to_bytes())
        self.fp = pub.fingerprint

    def sign(self, p1_json: str) -> str:
        p1 = b64e(p1_json.encode("utf-8"))
        return f"{p1}.{self.fp}.{b64e(crypto.sign(self.seed, crypto.CTX_POST, p1.encode('ascii')))}"


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> tuple[AdminClient, Author]:
    client = make_admin_client(tmp_path_factory.mktemp("node"))
    return client, Author(client)


def _import(node: tuple[AdminClient, Author], p1_json: str) -> Any:
    client, author = node
    return client.post("/posts/import", json={"post": author.sign(p1_json)})


def _stored(client: AdminClient) -> set[str]:
    folder = client.dd.posts
    return {p.name for p in folder.rglob("*") if p.is_file()} if folder.exists() else set()


# --- 1. numbers ------------------------------------------------------------------------------

@pytest.mark.parametrize("number", [f"{SAFE}", f"-{SAFE}", "1.5e308", "-0.0"])
def test_safe_numbers_in_a_post_are_accepted_and_served_as_strict_json(
        node: tuple[AdminClient, Author], number: str) -> None:
    r = _import(node, f'{{"CREATED_TIME":{T0},"X_NUM":{number},"TEXT":"n {number}"}}')
    assert r.status_code == 201, r.json
    got = node[0].get(f"/posts/{r.json['sha1']}")
    json.loads(got.data, parse_constant=pytest.fail)  # strict: no NaN/Infinity tokens
    assert got.json["attributes"]["X_NUM"]["value"] == json.loads(number)


@pytest.mark.parametrize("number", ["1e400", "-1e400", f"{SAFE + 1}", f"-{SAFE + 1}",
                                    "1" * 5000, "NaN", "Infinity"])
def test_unsafe_numbers_in_a_post_are_refused_for_every_type(
        node: tuple[AdminClient, Author], number: str) -> None:
    before = _stored(node[0])
    for key in ("X_NUM", "START_TIME"):
        r = _import(node, f'{{"CREATED_TIME":{T0},"{key}":{number}}}')
        body = assert_error(r, 400)
        assert "json" in body["message"].lower() or "number" in body["message"].lower(), body
    assert _stored(node[0]) == before
    tl = node[0].get("/posts?limit=1000")
    assert tl.status_code == 200 and b"Infinity" not in tl.data and b"NaN" not in tl.data


@pytest.mark.parametrize("body", [f'{{"limit": {SAFE + 1}}}', '{"x": 1e400}', '{"x": NaN}'])
def test_unsafe_numbers_in_api_bodies_are_400(node: tuple[AdminClient, Author],
                                               body: str) -> None:
    r = node[0].post("/posts", data=body, content_type="application/json")
    assert_error(r, 400)


@pytest.mark.parametrize("limit", ["1e400", str(SAFE + 1), "99999999999999999999999", "nan"])
def test_unsafe_numbers_in_query_args_are_400(node: tuple[AdminClient, Author],
                                              limit: str) -> None:
    assert_error(node[0].get(f"/posts?limit={limit}"), 400, "limit")


# --- 2. times -------------------------------------------------------------------------------

@pytest.mark.parametrize(("key", "value", "ok"), [
    ("START_TIME", -62135596800, True), ("START_TIME", -62135596801, False),
    ("EVENT_TIME", 253402300799, True), ("EVENT_TIME", 253402300800, False),
    ("START_TIME", -1_000_000_000_000_000, False), ("EVENT_TIME", 100_000_000_000_000_000, False),
])
def test_time_values_lie_in_the_years_1_to_9999(node: tuple[AdminClient, Author], key: str,
                                                value: int, ok: bool) -> None:
    r = _import(node, f'{{"CREATED_TIME":{T0},"{key}":{value},"TEXT":"{key} {value}"}}')
    if ok:
        assert r.status_code == 201, r.json
    else:
        body = assert_error(r, 400)
        assert key in body["errors"] or abs(value) > SAFE, body


def test_edge_times_never_crash_timeline_or_show(node: tuple[AdminClient, Author]) -> None:
    client, _ = node
    shas = [_import(node, f'{{"CREATED_TIME":{T0 + 1},"{k}":{v},"TEXT":"edge {k}"}}').json
            for k, v in (("START_TIME", -62135596800), ("EVENT_TIME", 253402300799))]
    root = str(client.dd.root)
    for args in (["timeline", "--limit", "1000"], *(["show", s["sha1"]] for s in shas)):
        result = CliRunner().invoke(main, ["--data-dir", root, *args], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        assert "Traceback" not in result.output


@pytest.mark.parametrize("stamp", [-62135596800, 253402300799, -10**15, 10**17, SAFE])
def test_a_time_beyond_the_platform_clock_is_shown_as_its_number(stamp: int) -> None:
    shown = when(stamp)
    assert shown == str(stamp) or shown[:1].isdigit()


def test_created_time_is_bounded_at_the_edge(node: tuple[AdminClient, Author]) -> None:
    assert_error(_import(node, '{"CREATED_TIME":253402300800}'), 400, "CREATED_TIME")


# --- 3. cursors -----------------------------------------------------------------------------

@pytest.mark.parametrize("created", ["9999999999999999999", "-9999999999999999999",
                                     str(SAFE + 1), "9" * 30])
def test_an_out_of_range_cursor_is_400(node: tuple[AdminClient, Author], created: str) -> None:
    cursor = b64e(f"{created}:{'0' * 40}".encode())
    assert_error(node[0].get(f"/posts?cursor={cursor}"), 400, "cursor")


def test_the_largest_cursor_is_an_empty_page_not_an_error(
        node: tuple[AdminClient, Author]) -> None:
    cursor = b64e(f"-{SAFE}:{'0' * 40}".encode())
    r = node[0].get(f"/posts?cursor={cursor}")
    assert r.status_code == 200 and r.json["posts"] == []


# --- 4. depth -------------------------------------------------------------------------------

_PATH_VALUES = {"fp": "0" * 64, "sha": "0" * 40, "name": "friends", "attribute": "TEXT",
                "id": "0" * 32, "device": "0" * 16}


def _json_routes(client: AdminClient) -> list[tuple[str, str]]:
    """Every (method, path) whose documented request body is JSON, path filled in."""
    spec = client.get("/openapi.json").json
    out = []
    for path, item in spec["paths"].items():
        for method, op in item.items():
            content = op.get("requestBody", {}).get("content", {}) if method != "parameters" else {}
            if "application/json" in content:
                filled = path
                for key, value in _PATH_VALUES.items():
                    filled = filled.replace("{" + key + "}", value)
                out.append((method.upper(), filled))
    assert len(out) >= 8, out
    return out


@pytest.mark.parametrize("depth", [33, 100_000])
def test_deep_json_is_400_on_every_json_route(node: tuple[AdminClient, Author],
                                              depth: int) -> None:
    for method, path in _json_routes(node[0]):
        r = node[0].open(method, path, data="[" * depth + "]" * depth,
                         content_type="application/json")
        body = assert_error(r, 400)
        assert "deeper" in body["message"], (method, path, body)


def test_json_at_the_depth_limit_is_judged_on_its_content(
        node: tuple[AdminClient, Author]) -> None:
    deep = "[" * 31 + "]" * 31
    r = node[0].post("/posts", data=f'{{"x": {deep}}}', content_type="application/json")
    body = assert_error(r, 400)
    assert "deeper" not in body["message"], body


def test_deep_json_in_a_multipart_field_is_400(node: tuple[AdminClient, Author]) -> None:
    client, _ = node
    fp = "0" * 64
    r = client.post("/posts", data={"fingerprint": fp, "password": "x",
                                    "attributes": "[" * 100_000 + "]" * 100_000},
                    content_type="multipart/form-data")
    body = assert_error(r, 400, "attributes")
    assert "deeper" in body["message"]


def test_peer_key_upload_uses_the_same_parser(tmp_path: Path) -> None:
    from app import create_peer_app
    client = make_admin_client(tmp_path / "ks", key_server=True)
    peer = create_peer_app({"data_dir": str(client.dd.root), "key_server": True}).test_client()
    for body in ("[" * 2000 + "]" * 2000, '{"public_key": 1e400}'):
        assert_error(peer.post("/identities", data=body, content_type="application/json"), 400)
