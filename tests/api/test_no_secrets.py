"""Attack 8, last part: no secret in any repr(), log line or error body.

A whole workflow runs through the admin API, the peer API and the CLI, with
every logger captured at DEBUG: create, sign, change the password, rotate the
transport key, publish, fail in every way a password can fail, and read a
damaged key file. Then every response body, every log line, every CLI output
and the repr() of every key object is searched for the passwords, the seed and
every transport secret, in hex, base64url and Python bytes form.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from app import create_peer_app
from app.cli.base import main
from app.core.base.encoding import b64e
from app.core.identity import keys
from tests.helpers.clients import make_admin_client

OLD, NEW = "first secret passphrase", "second secret passphrase"
WRONG = "a wrong guess at the passphrase"


def _forms(secret: bytes | str) -> list[str]:
    if isinstance(secret, str):
        return [secret]
    return [secret.hex(), b64e(secret), repr(secret)[2:-1]]


def test_a_whole_workflow_leaks_no_secret(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    admin = make_admin_client(tmp_path / "node")
    peer = create_peer_app({"data_dir": str(admin.dd.root)}).test_client()
    seen: list[str] = []

    def call(method: str, path: str, body: Any = None) -> Any:
        r = admin.open(method, path, json=body)
        seen.append(r.get_data(as_text=True))
        return r

    fp = call("POST", "/identities", {"password": OLD}).json["fingerprint"]
    call("POST", "/identities", {"password": "short", "note": OLD})
    call("POST", f"/identities/{fp}/sign", {"password": WRONG, "content": "x"})
    call("POST", f"/identities/{fp}/sign", {"password": OLD, "content": "x"})
    call("POST", f"/identities/{fp}/sign",
         {"password": OLD, "content": "!!", "encoding": "base64url"})
    call("POST", f"/identities/{fp}/password", {"old_password": WRONG, "new_password": NEW})
    call("POST", f"/identities/{fp}/password", {"old_password": OLD, "new_password": "short"})
    call("POST", f"/identities/{fp}/password", {"old_password": OLD, "new_password": NEW})
    call("POST", f"/identities/{fp}/transport", {"password": OLD})
    call("POST", f"/identities/{fp}/transport", {"password": NEW})
    call("POST", "/posts", {"fingerprint": fp, "password": WRONG, "text": "hi"})
    call("POST", "/posts", {"fingerprint": fp, "password": NEW, "text": "hi"})
    call("DELETE", f"/identities/{fp}", {"password": WRONG})
    call("GET", f"/identities/{fp}")
    seen.append(peer.get(f"/identities/{fp}").get_data(as_text=True))
    seen.append(peer.post(f"/feeds/{fp}", data=b"\x01" * 200).get_data(as_text=True))

    ids = admin.identities
    seed = ids.open_seed(fp, NEW)
    transports = ids.private_key(fp).transports
    secrets: list[bytes | str] = [OLD, NEW, WRONG, seed, *(t.secret for t in transports)]
    assert len(transports) == 3
    reprs = [repr(ids.private_key(fp)), str(ids.private_key(fp)), repr(ids.transport_keys(fp)),
             repr(transports), repr(ids.public_key(fp))]

    # the CLI, with its prompts fed on stdin
    cli = CliRunner()
    for args, given in ((["identity", "sign", fp, "x", "--password-stdin"], f"{WRONG}\n"),
                        (["identity", "sign", fp, "x", "--password-stdin"], f"{NEW}\n"),
                        (["identity", "rotate-transport", fp, "--password-stdin"], f"{WRONG}\n"),
                        (["--json", "identity", "passwd", fp, "--password-stdin"],
                         f"{WRONG}\n{OLD}\n"),
                        (["identity", "create", "--password-stdin"], "short\n")):
        result = cli.invoke(main, ["--data-dir", str(admin.dd.root), *args], input=given)
        seen.append(result.output)

    # a damaged key file: the error names the problem, not the content
    private = ids.private_path(fp)
    damaged = private.read_bytes()[:-40]
    private.write_bytes(damaged)
    r = call("POST", f"/identities/{fp}/sign", {"password": NEW, "content": "x"})
    assert r.status_code == 500 and "private key file" in r.json["message"]
    seen.append(repr(keys.parse_private) + str(r.json))

    haystack = "\n".join(seen + reprs + [caplog.text])
    for secret in secrets:
        for form in _forms(secret):
            assert form not in haystack, f"a secret leaked: {form[:8]}..."
