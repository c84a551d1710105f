"""Flask test clients for the admin app, and the check of the one error shape.

- :class:`AdminClient`: sends ``Authorization: Bearer <token>`` by default.
- :func:`make_admin_client`: an admin client on a data directory, with settings.
- :func:`assert_error`: a response is JSON ``{code, status, message[, errors]}``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from app import create_admin_app
from app.core.base.datadir import DataDir
from app.core.identity.identities import Identities


class AdminClient:
    """A Flask test client that sends ``Authorization: Bearer <token>`` by default."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.dd: DataDir = app.config["DIWAN"]
        self.token = self.dd.token_path.read_text("ascii").strip()
        self.client: FlaskClient = app.test_client()

    @property
    def identities(self) -> Identities:
        return Identities(self.dd)

    def open(self, method: str, path: str, *, auth: bool = True, **kw: Any) -> TestResponse:
        headers = dict(kw.pop("headers", None) or {})
        if auth:
            headers.setdefault("Authorization", f"Bearer {self.token}")
        return self.client.open(path, method=method, headers=headers, **kw)

    def get(self, path: str, **kw: Any) -> TestResponse:
        return self.open("GET", path, **kw)

    def post(self, path: str, **kw: Any) -> TestResponse:
        return self.open("POST", path, **kw)

    def put(self, path: str, **kw: Any) -> TestResponse:
        return self.open("PUT", path, **kw)

    def delete(self, path: str, **kw: Any) -> TestResponse:
        return self.open("DELETE", path, **kw)


def make_admin_client(root: Path, **settings: Any) -> AdminClient:
    """An admin client on the data directory ``root`` (created if missing)."""
    return AdminClient(create_admin_app({"data_dir": str(root), **settings}))


def assert_error(response: TestResponse, status: int, field: str | None = None) -> dict[str, Any]:
    """Check the one error shape: JSON {code, status, message[, errors naming field]}."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert body["code"] == status
    assert isinstance(body["status"], str) and body["status"]
    assert isinstance(body["message"], str) and body["message"]
    if field is not None:
        assert field in body.get("errors", {}), body
        assert body["errors"][field], body
    return body
