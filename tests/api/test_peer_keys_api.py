"""Attack 4 (GET half): ``GET /identities/<fp>`` on the peer port is no oracle.

It serves only this node's own keys (and uploaded keys in key-server mode); a
blocked person, a contact whose key the node holds and an unknown fingerprint
all get one identical 404 (status, headers, body), computed with the same work
and without reading the contact or block lists. ``serve_own_keys = false``
turns own keys into the same 404. No test here asserts a time (see
``bench/bench_key_probe.py`` for the timing probe).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from app import create_peer_app
from app.core.base.datadir import DataDir
from app.core.base.statefile import StateFile
from app.core.identity.identities import Identities
from app.core.network import keyserver
from app.core.network.contacts import Contacts
from tests.helpers.datadirs import PASSWORD, make_datadir
from tests.helpers.fake_peers import copy_node, other_key

Answer = tuple[int, bytes, tuple[tuple[str, str], ...]]


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> tuple[DataDir, str]:
    dd = make_datadir(tmp_path_factory.mktemp("template"))
    return dd, Identities(dd).create(PASSWORD)


def node_with_others(root: Path, template: tuple[DataDir, str], **settings: Any
                     ) -> tuple[FlaskClient, dict[str, str]]:
    """A node holding its own key, a contact's key, a blocked person's key; and an unknown."""
    dd = copy_node(root, template[0], [template[1]], **settings)
    ids, own = Identities(dd), template[1]
    fps = {"own": own}
    for name in ("contact", "blocked", "blocked_gone", "unknown"):
        fps[name], doc, _ = other_key()
        if name != "unknown":
            ids.import_pub(doc)
    Contacts(dd).put(fps["contact"], "http://10.0.0.1:8889", own)
    ids.block(fps["blocked"])
    ids.block(fps["blocked_gone"])
    ids.delete(fps["blocked_gone"])  # only the copy in identities/blocked/ is left
    app = create_peer_app({"data_dir": str(root), **settings})
    return app.test_client(), fps


def answer(client: FlaskClient, fp: str) -> Answer:
    r = client.get(f"/identities/{fp}")
    return r.status_code, r.data, tuple(sorted(r.headers.items()))


HIDDEN = ("contact", "blocked", "blocked_gone", "unknown")


def test_blocked_known_and_unknown_get_one_identical_404(
        tmp_path: Path, template: tuple[DataDir, str]) -> None:
    """A blocked person cannot learn it is blocked; nobody can test which keys a node holds."""
    client, fps = node_with_others(tmp_path / "n", template)
    answers = {name: answer(client, fps[name]) for name in HIDDEN}
    assert len(set(answers.values())) == 1, answers
    status, body, _ = answers["unknown"]
    assert status == 404 and fps["unknown"].encode() not in body
    assert json.loads(body) == {"code": 404, "status": "not_found",
                                "message": "no key is served here for this fingerprint",
                                "errors": {"fingerprint": [
                                    "no key is served here for this fingerprint"]}}
    own = answer(client, fps["own"])
    assert own[0] == 200 and own[1] == Identities(
        client.application.config["DIWAN"]).pub_document(fps["own"])


def test_serve_own_keys_off_makes_own_keys_the_same_404(
        tmp_path: Path, template: tuple[DataDir, str]) -> None:
    client, fps = node_with_others(tmp_path / "n", template, serve_own_keys=False)
    assert client.application.config["DIWAN"].settings["serve_own_keys"] is False
    answers = {name: answer(client, fps[name]) for name in ("own", *HIDDEN)}
    assert len(set(answers.values())) == 1 and answers["own"][0] == 404


def test_key_server_mode_serves_uploads_and_the_same_404_for_the_rest(
        tmp_path: Path, template: tuple[DataDir, str]) -> None:
    client, fps = node_with_others(tmp_path / "n", template, key_server=True)
    fps["uploaded"], doc, _ = other_key()
    nothing_uploaded_yet = answer(client, fps["unknown"])  # no database yet: the same 404
    r = client.post("/identities", data=doc, content_type="text/plain")
    assert r.status_code == 201
    assert answer(client, fps["uploaded"])[:2] == (200, doc)
    assert answer(client, fps["own"])[0] == 200
    answers = {name: answer(client, fps[name]) for name in HIDDEN}
    assert len(set(answers.values())) == 1 and answers["unknown"][0] == 404
    assert nothing_uploaded_yet == answers["unknown"]


def test_every_fingerprint_not_served_takes_the_same_steps(
        tmp_path: Path, template: tuple[DataDir, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """The structure behind the identical answers: the same calls into the key store and
    the key-server store for each, and no read of the contact list, the block list or
    any other state file (nothing whose cost depends on who the fingerprint is)."""
    client, fps = node_with_others(tmp_path / "n", template, key_server=True)
    calls: list[str] = []

    def spy(owner: Any, name: str) -> None:
        original: Callable[..., Any] = getattr(owner, name)

        @functools.wraps(original)
        def wrapper(*args: Any, **kw: Any) -> Any:
            calls.append(f"{owner.__name__}.{name}")
            return original(*args, **kw)

        monkeypatch.setattr(owner, name, wrapper)

    for name in [n for n in vars(Identities) if not n.startswith("__")]:
        if callable(getattr(Identities, name)):
            spy(Identities, name)
    spy(StateFile, "read")
    for name in ("uploaded_document", "_db", "stored_keys"):
        monkeypatch.setattr(keyserver, name, _recording(getattr(keyserver, name), calls, name))
    steps = {}
    for name in HIDDEN:
        calls.clear()
        assert answer(client, fps[name])[0] == 404
        steps[name] = tuple(calls)
    assert len(set(steps.values())) == 1, steps
    assert "Identities.is_blocked" not in steps["unknown"]
    assert not any(c.startswith("StateFile") for c in steps["unknown"])
    assert "uploaded_document" in steps["unknown"] and "Identities.is_own" in steps["unknown"]


def _recording(fn: Callable[..., Any], calls: list[str], name: str) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kw: Any) -> Any:
        calls.append(name)
        return fn(*args, **kw)
    return wrapper
