"""Every error is one JSON shape; bodies are capped at the edge; no input gives a 500."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from app.core.identity import keys
from app.core.identity.identities import Identities
from tests.helpers.clients import AdminClient, assert_error, make_admin_client
from tests.helpers.datadirs import OwnIdentity, snapshot
from tests.helpers.strangers import new_stranger

LIMIT = 600  # a small admin_max_body for the edge tests


@pytest.fixture(scope="module")
def small_admin(tmp_path_factory: pytest.TempPathFactory) -> AdminClient:
    return make_admin_client(tmp_path_factory.mktemp("small"), admin_max_body=LIMIT)


def _body_of_size(size: int) -> bytes:
    head, tail = b'{"public_key": "', b'"}'
    body = head + b"x" * (size - len(head) - len(tail)) + tail
    assert len(body) == size
    return body


def test_body_of_exactly_admin_max_body_passes_the_size_check(small_admin: AdminClient) -> None:
    r = small_admin.post("/identities", data=_body_of_size(LIMIT), content_type="application/json")
    assert_error(r, 400, "public_key")  # judged on its content, not its size


@pytest.mark.parametrize(("method", "path"), [
    ("POST", "/identities"), ("POST", "/identities/" + "0" * 64 + "/sign"),
    ("POST", "/identities/" + "0" * 64 + "/password"), ("DELETE", "/identities/" + "0" * 64),
])
def test_body_one_byte_over_is_413(small_admin: AdminClient, method: str, path: str) -> None:
    before = snapshot(small_admin.dd.root)
    r = small_admin.open(method, path, data=_body_of_size(LIMIT + 1),
                         content_type="application/json")
    assert_error(r, 413)
    assert snapshot(small_admin.dd.root) == before


@pytest.mark.parametrize(("size", "status"), [(LIMIT, 400), (LIMIT + 1, 413)])
def test_chunked_body_is_held_to_the_same_limit(small_admin: AdminClient, size: int,
                                                status: int) -> None:
    # no Content-Length: werkzeug would cut the body at the limit and parse the rest
    r = small_admin.post("/identities", input_stream=io.BytesIO(_body_of_size(size)),
                         content_type="application/json",
                         environ_overrides={"wsgi.input_terminated": True,
                                            "HTTP_TRANSFER_ENCODING": "chunked"})
    assert_error(r, status)


def test_default_limit_is_the_setting(module_admin: AdminClient) -> None:
    assert module_admin.app.config["MAX_CONTENT_LENGTH"] == module_admin.dd.settings[
        "admin_max_body"]


def test_unknown_route_and_method(module_admin: AdminClient) -> None:
    assert_error(module_admin.get("/nope"), 404)
    r = module_admin.open("PATCH", "/identities")
    assert_error(r, 405)
    assert set(r.headers["Allow"].replace(" ", "").split(",")) >= {"GET", "POST"}


def test_unexpected_exception_is_a_bare_500(module_admin: AdminClient,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(self: Identities) -> None:
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(Identities, "list", broken)
    r = module_admin.get("/identities")
    body = assert_error(r, 500)
    assert "secret internal detail" not in r.get_data(as_text=True)
    assert body["errors"] == {} and body["status"] == "internal_server_error"


# --- fuzz-ish: no body on any route ever gets a 500 ----------------------------------------

BAD_BODIES: list[tuple[bytes, str]] = [
    (b"", "application/json"), (b"{", "application/json"), (b"null", "application/json"),
    (b"[]", "application/json"), (b"0", "application/json"), (b'""', "application/json"),
    (b"true", "application/json"), (b"\xff\xfe\x00", "application/json"),
    (b"[" * 50_000, "application/json"), (b'{"a":' * 50_000, "application/json"),
    (b'{"password": 1e999999}', "application/json"), (b'{"password": NaN}', "application/json"),
    (b'{"password": "\\ud800"}', "application/json"),
    (b'{"content": "\\udfff", "password": "pw"}', "application/json"),
    (b'{"public_key": "\\u0000"}', "application/json"),
    (b'{"password": {"$gt": ""}}', "application/json"), (b'{"password": []}', "application/json"),
    (b'{"password": "x", "password": 3}', "application/json"),
    (b'{"old_password": null, "new_password": 1}', "application/json"),
    (b'{"content": "x", "password": "wrong", "encoding": "base64url"}', "application/json"),
    (b'{"content": "!!", "password": "wrong", "encoding": "base64url"}', "application/json"),
    (b'{"content": "x", "password": "wrong"}', "application/json"),
    (b'{"old_password": "wrong", "new_password": "x"}', "application/json"),
    (b'{"password": "wrong"}', "application/json"),
    (json.dumps({"public_key": "diwan-public-key-v1\n" + "sign " + "A" * 43 + "\n"}).encode(),
     "application/json"),
    (b'{"password": "x"}', "text/plain"), (b"password=x", "application/x-www-form-urlencoded"),
    (b"--b\r\nContent-Disposition: form-data; name=password\r\n\r\nx\r\n--b--\r\n",
     "multipart/form-data; boundary=b"),
    (b'{"password": "x"}', "application/json; charset=utf-16"),
]


def _paths(own: str, foreign: str) -> list[tuple[str, str]]:
    fps = [own, foreign, "0" * 64, "0" * 63, "%2e%2e", "a%2Fb"]
    names = ["blocked", "friends", "nosuch", "%2e%2e", "a%2Fb", "A" * 70, "%00"]
    out: list[tuple[str, str]] = [("GET", "/identities"), ("POST", "/identities"),
                                  ("GET", "/groups")]
    for fp in fps:
        out += [("GET", f"/identities/{fp}"), ("DELETE", f"/identities/{fp}"),
                ("POST", f"/identities/{fp}/sign"), ("POST", f"/identities/{fp}/password")]
    for name in names:
        out += [("GET", f"/groups/{name}"), ("PUT", f"/groups/{name}"),
                ("DELETE", f"/groups/{name}")]
        for fp in fps[:4]:
            out += [("PUT", f"/groups/{name}/{fp}"), ("DELETE", f"/groups/{name}/{fp}")]
    return out


def test_no_bad_input_on_any_route_is_a_500(module_admin: AdminClient,
                                            own_identity: OwnIdentity) -> None:
    doc = new_stranger().document
    foreign = module_admin.post("/identities", json={"public_key": doc.decode()}).json[
        "fingerprint"]
    module_admin.put("/groups/friends")
    private_before = own_identity.private_path.read_bytes()
    seen: set[int] = set()
    for method, path in _paths(own_identity.fingerprint, foreign):
        for body, content_type in BAD_BODIES:
            r = module_admin.open(method, path, data=body, content_type=content_type)
            assert r.status_code < 500, (method, path, body[:40], r.get_data(as_text=True))
            seen.add(r.status_code)
            if r.status_code >= 400:
                assert_error(r, r.status_code)
    assert {400, 403, 404} <= seen
    assert own_identity.private_path.read_bytes() == private_before
    identities: Path = module_admin.dd.identities
    assert not [p for p in identities.rglob("*") if p.name.startswith(".")]
    for pub in identities.glob("*.pub"):
        keys.parse_pub(pub.read_bytes(), expected_fp=pub.name[:-4])
