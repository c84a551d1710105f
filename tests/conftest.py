"""Shared fixtures for every test layer.

- ``datadir``: a fresh, initialised :class:`DataDir` in ``tmp_path``.
- ``admin_client`` / ``peer_client``: Flask test clients on a fresh data
  directory; the admin one sends the bearer token on every request.
- ``module_admin`` + ``own_identity``: one admin client and one own identity per
  test module, so Argon2id (64 MiB, ~0.1 s) runs once per module, not per test.
- ``make_admin_client(root, **settings)``: for tests that need special settings.

No ``DIWAN_*`` variable from the caller's environment leaks into a test, but
the insecure-KDF switch ``DIWAN_INSECURE_KDF=1`` is set for the whole suite
(and passed on to the real processes of tests/integration): key files use
libsodium's minimum Argon2id cost, so creating and opening keys is fast. Tests
of the real cost and the floor unset it with ``real_kdf``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from app import create_admin_app, create_peer_app
from app.core.base.config import INSECURE_KDF_ENV, warn_if_insecure_kdf
from app.core.base.datadir import DataDir
from app.core.identity.identities import Identities

PASSWORD = "correct horse battery staple"  # 12+ characters
TESTS = Path(__file__).resolve().parent
KEY_DATA = TESTS / "data" / "keys"


@pytest.fixture(autouse=True, scope="session")
def _no_diwan_environment() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as mp:
        for name in list(os.environ):
            if name.startswith("DIWAN_"):
                mp.delenv(name)
        mp.setenv(INSECURE_KDF_ENV, "1")
        warn_if_insecure_kdf()  # announced once here, not in the middle of a test's output
        yield


@pytest.fixture
def real_kdf(monkeypatch: pytest.MonkeyPatch) -> None:
    """Turn the insecure-KDF switch off for one test (real Argon2id cost and floor)."""
    monkeypatch.delenv(INSECURE_KDF_ENV)


def make_datadir(root: Path, **settings: Any) -> DataDir:
    """An initialised data directory at ``root`` with ``settings`` as overrides."""
    dd = DataDir(root, settings, environ={})
    dd.initialise()
    return dd


@pytest.fixture
def datadir(tmp_path: Path) -> DataDir:
    return make_datadir(tmp_path / "node")


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
    return AdminClient(create_admin_app({"data_dir": str(root), **settings}))


@pytest.fixture
def admin_client(tmp_path: Path) -> AdminClient:
    """An admin client on a fresh data directory (function scope)."""
    return make_admin_client(tmp_path / "node")


@pytest.fixture
def peer_client(admin_client: AdminClient) -> FlaskClient:
    """A peer-app test client on the same data directory as ``admin_client``."""
    return create_peer_app({"data_dir": str(admin_client.dd.root)}).test_client()


@pytest.fixture(scope="module")
def module_admin(tmp_path_factory: pytest.TempPathFactory) -> AdminClient:
    """One admin client per test module (its data directory is shared by the module)."""
    return make_admin_client(tmp_path_factory.mktemp("node"))


@dataclass(frozen=True)
class OwnIdentity:
    fingerprint: str
    password: str
    dd: DataDir

    @property
    def private_path(self) -> Path:
        return self.dd.identities / self.fingerprint

    @property
    def pub_path(self) -> Path:
        return self.dd.identities / f"{self.fingerprint}.pub"


@pytest.fixture(scope="module")
def own_identity(module_admin: AdminClient) -> OwnIdentity:
    """An own identity in ``module_admin``'s data directory (tests must not change it)."""
    fp = module_admin.identities.create(PASSWORD)
    return OwnIdentity(fp, PASSWORD, module_admin.dd)


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
