"""Admin access: bearer token (compared in constant time), loopback Host, no cross-site Origin."""

from __future__ import annotations

import hmac
import re
import tempfile

import pytest

import app.core.base.datadir as datadir_module
from app import create_admin_app
from app.web import guard
from tests.helpers.clients import AdminClient, assert_error
from tests.helpers.datadirs import snapshot

# docs/protocol.md "Admin API access": every request except these needs the token
OPEN_PATHS = frozenset({"/health", "/openapi.json"})
PATH_ARGUMENTS = {"fp": "0" * 64, "name": "x", "sha": "0" * 40, "attribute": "TEXT", "id": "x",
                  "device": "0" * 16}


def _admin_routes() -> list[tuple[str, str]]:
    """Every (method, path) of the admin app's URL map, open paths left out, arguments filled.

    Derived from the app itself, so a new route is covered without touching this
    file; a route with an argument not in PATH_ARGUMENTS fails collection (KeyError).
    The web pages sign in with a session cookie instead (tests/pages/test_pages_auth.py).
    """
    with tempfile.TemporaryDirectory() as root:
        rules = list(create_admin_app({"data_dir": root}).url_map.iter_rules())
    routes = [(method, re.sub(r"<(?:[^<>:]+:)?([^<>]+)>", lambda m: PATH_ARGUMENTS[m[1]],
                              rule.rule))
              for rule in rules if rule.rule not in OPEN_PATHS
              and not rule.endpoint.startswith("pages.")  # cookie sessions: tests/pages
              for method in sorted(rule.methods or ())]
    extra = [("GET", "/groups/blocked"), ("GET", "/nonexistent"), ("POST", "/nonexistent")]
    return sorted(set(routes)) + extra


ROUTES = _admin_routes()


def test_every_route_of_the_url_map_is_checked() -> None:
    # the old hand-made list, each of which must still be among the derived routes
    for route in [("GET", "/identities"), ("POST", "/identities"),
                  ("GET", "/identities/" + "0" * 64), ("DELETE", "/identities/" + "0" * 64),
                  ("POST", "/identities/" + "0" * 64 + "/sign"),
                  ("POST", "/identities/" + "0" * 64 + "/password"), ("GET", "/groups"),
                  ("GET", "/groups/blocked"), ("PUT", "/groups/x"),
                  ("DELETE", "/groups/x"), ("PUT", "/groups/x/" + "0" * 64),
                  ("DELETE", "/groups/x/" + "0" * 64), ("GET", "/nonexistent")]:
        assert route in ROUTES
    assert {"/posts", "/contacts", "/sync", "/peers/lying"} <= {p for _, p in ROUTES}
    assert guard.OPEN_PATHS == OPEN_PATHS  # opening a path is a decision the docs record


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_missing_token_is_401_everywhere(module_admin: AdminClient, method: str, path: str) -> None:
    before = snapshot(module_admin.dd.root)
    r = module_admin.open(method, path, auth=False, json={"password": "x"})
    if method == "HEAD":  # the same answer without its body
        assert r.status_code == 401 and r.mimetype == "application/json" and not r.data
    else:
        body = assert_error(r, 401)
        assert "admin.token" in body["message"]
    assert snapshot(module_admin.dd.root) == before


@pytest.mark.parametrize("header", [
    "Bearer", "Bearer ", "Bearer wrong", "Basic {token}", "{token}", "Bearer {token}x",
    "Bearer {short}", "Token {token}", "Bearer\t{token}x", "Bearer é{token}",
])
def test_wrong_token_is_401(module_admin: AdminClient, header: str) -> None:
    value = header.format(token=module_admin.token, short=module_admin.token[:-1])
    r = module_admin.get("/identities", headers={"Authorization": value})
    assert_error(r, 401)


def test_right_token_is_accepted(module_admin: AdminClient) -> None:
    for value in (f"Bearer {module_admin.token}", f"bearer {module_admin.token}",
                  f"Bearer {module_admin.token} "):
        assert module_admin.get("/identities", headers={"Authorization": value}).status_code == 200


def test_token_is_compared_in_constant_time(module_admin: AdminClient,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(datadir_module.hmac, "compare_digest", spy)
    assert module_admin.get("/identities", headers={"Authorization": "Bearer nope"}
                            ).status_code == 401
    assert module_admin.get("/identities").status_code == 200
    assert calls == [(module_admin.token.encode(), b"nope"),
                     (module_admin.token.encode(), module_admin.token.encode())]


@pytest.mark.parametrize("host", ["evil.com", "evil.com:8888", "localhost.evil.com",
                                  "127.0.0.1.nip.io", "127.0.0.2", "10.0.0.1:8888", "0.0.0.0",
                                  "[::2]:8888", "localhost@evil.com", ""])
def test_foreign_host_is_403_even_with_token(module_admin: AdminClient, host: str) -> None:
    for path in ("/identities", "/health", "/openapi.json"):
        r = module_admin.get(path, headers={"Host": host})
        body = assert_error(r, 403)
        assert body["status"] == "refused_origin"


@pytest.mark.parametrize("host", ["localhost", "localhost:8888", "127.0.0.1", "127.0.0.1:8888",
                                  "[::1]", "[::1]:8888", "LOCALHOST:8888"])
def test_loopback_hosts_are_accepted(module_admin: AdminClient, host: str) -> None:
    assert module_admin.get("/identities", headers={"Host": host}).status_code == 200


@pytest.mark.parametrize("origin", ["http://evil.example", "https://evil.example:8888", "null",
                                    "http://localhost.evil.example", "file://", "ftp://localhost",
                                    "http://127.0.0.1@evil.example"])
def test_cross_site_origin_is_403(module_admin: AdminClient, origin: str) -> None:
    before = snapshot(module_admin.dd.root)
    r = module_admin.post("/identities", headers={"Origin": origin}, json={"password": "x"})
    assert_error(r, 403)
    assert module_admin.get("/identities", headers={"Origin": origin}).status_code == 403
    assert snapshot(module_admin.dd.root) == before  # no identity made, nothing touched


@pytest.mark.parametrize("origin", ["http://localhost:8888", "http://127.0.0.1:8888",
                                    "http://[::1]:8888", "https://localhost"])
def test_loopback_origin_is_accepted(module_admin: AdminClient, origin: str) -> None:
    assert module_admin.get("/identities", headers={"Origin": origin}).status_code == 200


@pytest.mark.parametrize(("value", "status"), [("cross-site", 403), ("same-site", 403),
                                               ("same-origin", 200), ("none", 200)])
def test_sec_fetch_site(module_admin: AdminClient, value: str, status: int) -> None:
    r = module_admin.get("/identities", headers={"Sec-Fetch-Site": value})
    assert r.status_code == status


def test_open_paths_need_no_token(module_admin: AdminClient) -> None:
    assert module_admin.get("/health", auth=False).json == {"status": "ok", "app": "admin"}
    assert module_admin.get("/openapi.json", auth=False).status_code == 200
