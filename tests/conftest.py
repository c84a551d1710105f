"""Shared fixtures for every test layer (the helpers they use live in tests/helpers/).

- ``datadir``: a fresh, initialised :class:`DataDir` in ``tmp_path``.
- ``admin_client`` / ``peer_client``: Flask test clients on a fresh data
  directory; the admin one sends the bearer token on every request.
- ``module_admin`` + ``own_identity``: one admin client and one own identity per
  test module (identity creation is cheap under the suite's insecure-KDF switch).

Tests import helpers (``make_admin_client``, ``assert_error``, ``snapshot``,
``new_stranger``, ``PASSWORD``, ...) from ``tests.helpers.<module>``, never from this file.
No ``DIWAN_*`` variable from the caller's environment leaks into a test, but
the insecure-KDF switch ``DIWAN_INSECURE_KDF=1`` (and ``DIWAN_LAN_DISCOVERY=false``) is set
for the whole suite
(and passed on to the real processes of tests/integration): key files use
libsodium's minimum Argon2id cost, so creating and opening keys is fast. Tests
of the real cost and the floor unset it with ``real_kdf``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from app import create_peer_app
from app.core.base.config import INSECURE_KDF_ENV, warn_if_insecure_kdf
from app.core.base.datadir import DataDir
from app.core.network import lan
from tests.helpers.clients import AdminClient, make_admin_client
from tests.helpers.datadirs import PASSWORD, OwnIdentity, make_datadir


@pytest.fixture(autouse=True, scope="session")
def _no_diwan_environment() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as mp:
        for name in list(os.environ):
            if name.startswith("DIWAN_"):
                mp.delenv(name)
        mp.setenv(INSECURE_KDF_ENV, "1")
        # No test multicasts on this machine's real networks: LAN discovery is off in every
        # process started with the suite's environment, and an in-process look-up hears
        # nothing (tests/integration/test_netns.py runs it inside its own namespaces).
        mp.setenv("DIWAN_LAN_DISCOVERY", "false")
        mp.setattr(lan, "browse", lambda hosts, wait: [])
        warn_if_insecure_kdf()  # announced once here, not in the middle of a test's output
        yield


@pytest.fixture
def real_kdf(monkeypatch: pytest.MonkeyPatch) -> None:
    """Turn the insecure-KDF switch off for one test (real Argon2id cost and floor)."""
    monkeypatch.delenv(INSECURE_KDF_ENV)


@pytest.fixture
def datadir(tmp_path: Path) -> DataDir:
    return make_datadir(tmp_path / "node")


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


@pytest.fixture(scope="module")
def own_identity(module_admin: AdminClient) -> OwnIdentity:
    """An own identity in ``module_admin``'s data directory (tests must not change it)."""
    fp = module_admin.identities.create(PASSWORD)
    return OwnIdentity(fp, PASSWORD, module_admin.dd)
