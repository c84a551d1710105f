"""Transport key rotation and certificate merging (docs/protocol.md, "Rotation").

rotate_transport and change_password write the private key file first (the
published transport secret and the next one), then the .pub. The crash tests
kill a real process at every rename, or make each write fail, and check that
what is left on disk is whole and usable.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from app.core.base import crypto
from app.core.base.errors import KeyConflict, NotFound, WrongPassword
from app.core.identity import keys
from app.core.identity import transport as transport_module
from app.core.identity.identities import Identities
from tests.helpers.datadirs import make_datadir

ROOT = Path(__file__).resolve().parents[3]
OLD, NEW = "the old password", "the new password"


@pytest.fixture
def store(tmp_path: Path) -> Identities:
    return Identities(make_datadir(tmp_path / "node"))


def test_rotate_gives_a_new_key_and_keeps_the_old_one_for_the_grace(store: Identities) -> None:
    fp = store.create(OLD)
    device = store.device_id(fp)
    first = store.transport_secret(fp)
    assert store.rotate_transport(fp, OLD) == 2
    pub = store.public_key(fp)
    assert pub.devices == (keys.DeviceCert(device, 2, pub.transport_public),)
    assert crypto.transport_public(store.transport_secret(fp)) == pub.transport_public
    current, previous = store.transport_keys(fp)
    assert (current.serial, current.retired_at, current.secret) == (
        2, None, store.transport_secret(fp))
    assert (previous.serial, previous.secret, previous.device_id) == (1, first, device)
    assert previous.retired_at is not None
    assert previous.public == crypto.transport_public(first)
    for key in (current, previous):
        assert key.secret.hex() not in repr(key) and repr(key.secret) not in repr(key)


def test_previous_keys_leave_after_the_grace_window(store: Identities) -> None:
    fp = store.create(OLD)
    store.rotate_transport(fp, OLD)
    retired = store.transport_keys(fp)[1].retired_at
    assert retired is not None
    grace = store.dd.settings["transport_grace_seconds"]
    assert grace == 7 * 86400
    assert [k.serial for k in store.transport_keys(fp, now=retired + grace - 1)] == [2, 1]
    assert [k.serial for k in store.transport_keys(fp, now=retired + grace)] == [2]


def test_a_rotation_drops_expired_keys_from_the_file(tmp_path: Path) -> None:
    store = Identities(make_datadir(tmp_path / "n", transport_grace_seconds=0))
    fp = store.create(OLD)
    for _ in range(3):
        store.rotate_transport(fp, OLD)
    assert [t.serial for t in store.private_key(fp).transports] == [3, 4]
    assert [k.serial for k in store.transport_keys(fp)] == [4]


def test_a_wrong_password_rotates_nothing(store: Identities) -> None:
    fp = store.create(OLD)
    files = {p: p.read_bytes() for p in store.dir.iterdir() if p.is_file()}
    with pytest.raises(WrongPassword):
        store.rotate_transport(fp, "not the password")
    assert {p: p.read_bytes() for p in store.dir.iterdir() if p.is_file()} == files


def test_update_pub_applies_the_serial_rule(store: Identities) -> None:
    seed = crypto.new_signing_seed()
    device = keys.DeviceCert("d" * 16, 1, crypto.transport_public(crypto.new_transport_secret()))
    doc = keys.certify(seed, [device]).to_bytes()
    with pytest.raises(NotFound):
        store.update_pub(keys.parse_pub(doc).fingerprint, doc)
    fp = store.import_pub(doc)
    store.create_group("friends")
    store.add_member("friends", fp)
    assert store.update_pub(fp, doc) is False
    newer = keys.certify(seed, [keys.DeviceCert(device.device_id, 7, crypto.transport_public(
        crypto.new_transport_secret()))])
    assert store.update_pub(fp, newer.to_bytes()) is True
    assert store.pub_document(fp) == newer.to_bytes()
    assert (store.dir / "friends" / f"{fp}.pub").read_bytes() == newer.to_bytes()
    with pytest.raises(KeyConflict):
        store.update_pub(fp, doc)
    assert store.pub_document(fp) == newer.to_bytes()


def test_update_pub_never_changes_this_nodes_own_device(store: Identities) -> None:
    fp = store.create(OLD)
    seed = store.open_seed(fp, OLD)
    mine = store.public_key(fp).devices[0]
    hijack = keys.certify(seed, [keys.DeviceCert(mine.device_id, 9, crypto.transport_public(
        crypto.new_transport_secret()))])
    with pytest.raises(KeyConflict):
        store.update_pub(fp, hijack.to_bytes())
    assert store.public_key(fp).devices == (mine,)
    laptop = keys.certify(seed, [keys.DeviceCert("e" * 16, 1, crypto.transport_public(
        crypto.new_transport_secret()))])
    assert store.update_pub(fp, laptop.to_bytes()) is True          # another device: fine
    assert store.public_key(fp).transport_public == mine.transport_public


# --- crash safety -------------------------------------------------------------------

def _check_whole(store: Identities, fp: str) -> str:
    """Everything opens and serves; return the one password that opens the key."""
    private = store.private_key(fp)
    pub = store.public_key(fp)
    opened = []
    for password in (OLD, NEW):
        try:
            assert crypto.signing_public(private.open_seed(password)) == pub.sign
            opened.append(password)
        except WrongPassword:
            pass
    assert len(opened) == 1, opened
    current = store.transport_keys(fp)[0]
    assert current.retired_at is None
    assert current.public == pub.transport_public
    assert crypto.transport_public(store.transport_secret(fp)) == pub.transport_public
    return opened[0]


def _recovers(store: Identities, fp: str, password: str) -> None:
    """After any crash the next rotation completes and publishes a fresh serial."""
    before = store.public_key(fp).devices[0].serial
    serial = store.rotate_transport(fp, password)
    assert serial > before and store.public_key(fp).devices[0].serial == serial
    assert _check_whole(store, fp) == password


_KILLER = textwrap.dedent("""
    import os, signal, sys
    from app.core.base.datadir import DataDir
    from app.core.identity.identities import Identities
    root, fp, kill_at, when = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    real_replace, calls = os.replace, [0]
    def replace(src, dst, *a, **kw):
        calls[0] += 1
        if calls[0] == kill_at and when == "before":
            os.kill(os.getpid(), signal.SIGKILL)
        real_replace(src, dst, *a, **kw)
        if calls[0] == kill_at and when == "after":
            os.kill(os.getpid(), signal.SIGKILL)
    os.replace = replace
    dd = DataDir(root, environ={})
    Identities(dd).change_password(fp, OLD, NEW)
    print("finished")
""").replace("OLD", repr(OLD)).replace("NEW", repr(NEW))


@pytest.mark.parametrize("kill_at,when", [(1, "before"), (1, "after"), (2, "before"),
                                          (2, "after"), (3, "before"), (3, "after")])
def test_change_password_killed_at_each_step_leaves_a_whole_state(
        tmp_path: Path, kill_at: int, when: str) -> None:
    store = Identities(make_datadir(tmp_path / "node"))
    fp = store.create(OLD)
    store.create_group("friends")
    store.add_member("friends", fp)           # a group copy of the .pub: a third rename
    done = subprocess.run([sys.executable, "-c", _KILLER, str(store.dd.root), fp, str(kill_at),
                           when], cwd=ROOT, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == -signal.SIGKILL, done.stderr   # really killed there
    password = _check_whole(store, fp)
    assert password == (OLD if (kill_at, when) in ((1, "before"),) else NEW)
    # killed after the key file but before the .pub: the old transport key still serves
    serial = store.public_key(fp).devices[0].serial
    assert serial == (1 if (kill_at, when) in ((1, "before"), (1, "after"), (2, "before"))
                      else 2)
    _recovers(store, fp, password)


@pytest.mark.parametrize("fail_at", [1, 2])
def test_change_password_failing_at_each_write_leaves_a_whole_state(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fail_at: int) -> None:
    store = Identities(make_datadir(tmp_path / "node"))
    fp = store.create(OLD)
    real, calls = transport_module.write_atomic, [0]

    def failing(path: Path, data: bytes, **kw: object) -> bool:
        calls[0] += 1
        if calls[0] == fail_at:
            raise OSError(28, "No space left on device")
        return real(path, data, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(transport_module, "write_atomic", failing)
    with pytest.raises(OSError):
        store.change_password(fp, OLD, NEW)
    monkeypatch.undo()
    assert _check_whole(store, fp) == (OLD if fail_at == 1 else NEW)
    assert store.public_key(fp).devices[0].serial == 1
    _recovers(store, fp, OLD if fail_at == 1 else NEW)
