"""/openapi.json documents every admin operation, generated from the marshmallow schemas."""

from __future__ import annotations

import re
from typing import Any

import pytest

from app import create_peer_app
from tests.helpers.clients import AdminClient

ISSUE2_OPERATIONS = {
    ("/identities", "get"): None,
    ("/identities", "post"): "CreateIdentity",
    ("/identities/{fp}", "get"): None,
    ("/identities/{fp}", "delete"): "DeleteIdentity",
    ("/identities/{fp}/sign", "post"): "SignIn",
    ("/identities/{fp}/password", "post"): "PasswordIn",
    ("/groups", "get"): None,
    ("/groups/{name}", "get"): None,
    ("/groups/{name}", "put"): None,
    ("/groups/{name}", "delete"): None,
    ("/groups/{name}/{fp}", "put"): None,
    ("/groups/{name}/{fp}", "delete"): None,
}
UNDOCUMENTED = {"/openapi.json", "/health"}
OPENAPI_LOCATIONS = {"path", "query", "header", "cookie"}


@pytest.fixture(scope="module")
def spec(module_admin: AdminClient) -> dict[str, Any]:
    r = module_admin.get("/openapi.json", auth=False)
    assert r.status_code == 200 and r.mimetype == "application/json"
    return dict(r.json)


def _flask_to_openapi(rule: str) -> str:
    return re.sub(r"<(?:[a-z_]+:)?([a-z_]+)>", r"{\1}", rule)


def test_every_issue2_operation_with_its_request_schema(spec: dict[str, Any]) -> None:
    schemas = spec["components"]["schemas"]
    for (path, method), body in ISSUE2_OPERATIONS.items():
        op = spec["paths"][path][method]
        assert op.get("summary"), (path, method)
        assert any(code.startswith("2") for code in op["responses"]), (path, method)
        if body is not None:
            ref = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
            assert ref == f"#/components/schemas/{body}"
            assert schemas[body]["properties"], body


def test_request_schemas_name_their_fields(spec: dict[str, Any]) -> None:
    schemas = spec["components"]["schemas"]
    assert set(schemas["CreateIdentity"]["properties"]) == {"password", "public_key"}
    assert set(schemas["SignIn"]["properties"]) == {"password", "content", "encoding"}
    assert set(schemas["SignIn"]["required"]) == {"password", "content"}
    assert set(schemas["PasswordIn"]["required"]) == {"old_password", "new_password"}
    assert schemas["CreateIdentity"]["properties"]["password"]["maxLength"] == 1024
    assert schemas["SignIn"]["properties"]["encoding"]["enum"] == ["utf-8", "base64url"]


def test_every_route_of_the_app_is_documented(module_admin: AdminClient,
                                              spec: dict[str, Any]) -> None:
    for rule in module_admin.app.url_map.iter_rules():
        if rule.rule in UNDOCUMENTED:
            continue
        path = _flask_to_openapi(rule.rule)
        if rule.endpoint.startswith("pages."):  # the web pages stay out of the API document
            assert path not in spec["paths"], rule.rule
            continue
        assert path in spec["paths"], rule.rule
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert method.lower() in spec["paths"][path], (rule.rule, method)


def test_parameters_use_openapi_locations(spec: dict[str, Any]) -> None:
    for path, item in spec["paths"].items():
        for key, op in item.items():
            params = op if key == "parameters" else op.get("parameters", [])
            for p in params:
                assert p["in"] in OPENAPI_LOCATIONS, (path, key, p)
        for name in re.findall(r"{(\w+)}", path):
            assert any(p["name"] == name and p["in"] == "path"
                       for p in item.get("parameters", [])), (path, name)


def test_bearer_security_is_declared(spec: dict[str, Any]) -> None:
    assert spec["security"] == [{"bearer": []}]
    assert spec["components"]["securitySchemes"]["bearer"] == {"type": "http",
                                                               "scheme": "bearer"}
    assert spec["openapi"].startswith("3.")


def test_peer_openapi_lists_the_key_server(module_admin: AdminClient) -> None:
    peer = create_peer_app({"data_dir": str(module_admin.dd.root)}).test_client()
    spec = peer.get("/openapi.json").json
    assert "get" in spec["paths"]["/identities/{fp}"]
    assert "/groups" not in spec["paths"] and "/identities/{fp}/sign" not in spec["paths"]
