"""The OpenAPI documents are a faithful contract (issue 10, item 7).

- ``openapi-spec-validator`` accepts both documents;
- every pattern is an ECMA-262 regex anchored ``^...$`` (compiled by a JavaScript
  engine: Node.js; skipped locally without it, a failure under CI=true);
- every operation, ``/health`` included, has an ``operationId``; fingerprint and
  SHA-1 inputs carry their patterns;
- every error any route can produce has the one shape (the document's ``Error``
  schema, ``status`` a snake_case code, ``errors`` an object), checked over every
  operation x {bad input, wrong method, no token, body too large}.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft4Validator
from openapi_spec_validator import validate

from app import create_peer_app
from tests.helpers.clients import AdminClient, assert_error, make_admin_client

LIMIT = 600
VALUES = {"fp": "0" * 64, "sha": "0" * 40, "name": "friends", "attribute": "TEXT",
          "id": "0" * 32, "device": "0" * 16}
BAD = {"fp": "NOT-A-FINGERPRINT", "sha": "xyz", "name": "Bad Name!", "attribute": "lower",
       "id": "zz", "device": "0" * 15}
METHODS = ("get", "put", "post", "delete", "patch")
OPEN = {"/health", "/openapi.json"}


@pytest.fixture(scope="module")
def admin(tmp_path_factory: pytest.TempPathFactory) -> AdminClient:
    return make_admin_client(tmp_path_factory.mktemp("contract"), admin_max_body=LIMIT)


@pytest.fixture(scope="module")
def specs(admin: AdminClient) -> dict[str, dict[str, Any]]:
    peer = create_peer_app({"data_dir": str(admin.dd.root)}).test_client()
    return {"admin": admin.get("/openapi.json").json, "peer": peer.get("/openapi.json").json}


def _walk(node: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield key, value
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def _operations(spec: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in spec["paths"].items():
        for method in METHODS:
            if method in item:
                yield path, method, item[method]


def _fill(path: str, values: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: values[m[1]], path)


@pytest.mark.parametrize("which", ["admin", "peer"])
def test_the_document_is_valid_openapi(specs: dict[str, dict[str, Any]], which: str) -> None:
    validate(specs[which])


@pytest.mark.parametrize("which", ["admin", "peer"])
def test_every_operation_has_an_operation_id_and_health_is_documented(
        specs: dict[str, dict[str, Any]], which: str) -> None:
    spec = specs[which]
    ids = [op.get("operationId") for _, _, op in _operations(spec)]
    assert all(ids) and len(set(ids)) == len(ids), ids
    assert "get" in spec["paths"]["/health"]


@pytest.mark.parametrize("which", ["admin", "peer"])
def test_fingerprint_and_sha_parameters_carry_their_patterns(
        specs: dict[str, dict[str, Any]], which: str) -> None:
    for path, item in specs[which]["paths"].items():
        for _, op in [("", item), *((m, item[m]) for m in METHODS if m in item)]:
            for param in op.get("parameters", []):
                if param["in"] == "path" and param["name"] in ("fp", "sha"):
                    assert param["schema"].get("pattern"), (path, param)
    create = specs["admin"]["components"]["schemas"]["CreatePost"]["properties"]
    assert create["fingerprint"]["pattern"] == "^[0-9a-f]{64}$"
    assert create["reply_to"]["pattern"] == "^[0-9a-f]{40}$"


def test_every_pattern_is_an_anchored_ecma262_regex(specs: dict[str, dict[str, Any]]) -> None:
    patterns = sorted({v for spec in specs.values() for k, v in _walk(spec) if k == "pattern"})
    assert patterns
    for pattern in patterns:
        assert pattern.startswith("^") and pattern.endswith("$") and "\\Z" not in pattern
    node = shutil.which("node") or shutil.which("nodejs")
    if node is None:
        if os.environ.get("CI") == "true":
            pytest.fail("Node.js is needed to compile the patterns as ECMA-262 regexes")
        pytest.skip("Node.js (a JavaScript engine) is not installed")
    script = ("const ps = JSON.parse(require('fs').readFileSync(0, 'utf8'));"
              "for (const p of ps) { new RegExp(p, 'u'); } console.log(ps.length);")
    done = subprocess.run([node, "-e", script], input=json.dumps(patterns), text=True,
                          capture_output=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(len(patterns))


# --- one error shape -------------------------------------------------------------------------

def _error_validator(spec: dict[str, Any]) -> Draft4Validator:
    return Draft4Validator(spec["components"]["schemas"]["Error"])


def _check(response: Any, status: int | None, spec: dict[str, Any], what: Any) -> dict[str, Any]:
    if status is None:
        assert 400 <= response.status_code < 500, (what, response.status_code, response.data)
        status = response.status_code
    body = assert_error(response, status)
    _error_validator(spec).validate(body)
    assert re.fullmatch(r"[a-z][a-z0-9_]*", body["status"]), (what, body)
    assert isinstance(body["errors"], dict), (what, body)
    return body


def test_bad_input_on_every_operation(admin: AdminClient,
                                      specs: dict[str, dict[str, Any]]) -> None:
    spec, checked = specs["admin"], 0
    for path, method, op in _operations(spec):
        if path in OPEN:
            continue
        if "{" in path:  # a malformed path parameter
            _check(admin.open(method.upper(), _fill(path, BAD)), None, spec, (method, path))
            checked += 1
        if "application/json" in op.get("requestBody", {}).get("content", {}):
            r = admin.open(method.upper(), _fill(path, VALUES), data="[1, 2]",
                           content_type="application/json")
            _check(r, 400, spec, (method, path))
            checked += 1
    assert checked >= 20


def test_wrong_method_on_every_path(admin: AdminClient, specs: dict[str, dict[str, Any]]) -> None:
    spec = specs["admin"]
    for path, item in spec["paths"].items():
        if path in OPEN:
            continue
        wrong = next(m for m in reversed(METHODS) if m not in item)  # PATCH first
        r = admin.open(wrong.upper(), _fill(path, VALUES))
        _check(r, 405, spec, (wrong, path))
        allowed = {m.strip() for m in r.headers["Allow"].split(",")}
        assert {m.upper() for m in METHODS if m in item} <= allowed, (path, allowed)


def test_no_token_on_every_operation(admin: AdminClient,
                                     specs: dict[str, dict[str, Any]]) -> None:
    spec = specs["admin"]
    for path, method, _ in _operations(spec):
        if path in OPEN:
            continue
        r = admin.open(method.upper(), _fill(path, VALUES), auth=False)
        _check(r, 401, spec, (method, path))
        assert r.headers["WWW-Authenticate"].startswith("Bearer"), (method, path)


def test_body_too_large_on_every_operation(admin: AdminClient,
                                           specs: dict[str, dict[str, Any]]) -> None:
    spec = specs["admin"]
    for path, method, _ in _operations(spec):
        if path in OPEN or method == "get":
            continue
        r = admin.open(method.upper(), _fill(path, VALUES), data=b"x" * (LIMIT + 1),
                       content_type="application/json")
        _check(r, 413, spec, (method, path))


def test_unknown_path_and_peer_errors_have_the_same_shape(
        admin: AdminClient, specs: dict[str, dict[str, Any]], tmp_path: Path) -> None:
    _check(admin.get("/no/such/route"), 404, specs["admin"], "404")
    peer = create_peer_app({"data_dir": str(admin.dd.root)}).test_client()
    for r in (peer.get("/no/such"), peer.delete("/identities"), peer.post("/feeds/xyz"),
              peer.get("/identities/" + "0" * 64)):
        _check(r, None, specs["peer"], r.request.path)
