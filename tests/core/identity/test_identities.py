"""app/core/identities.py: own keys on disk, others' keys, groups and the blocked list."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from app.core.base import crypto
from app.core.base.datadir import DataDir
from app.core.base.errors import (
    BadFingerprint,
    BadKeyDocument,
    BadName,
    Conflict,
    Forbidden,
    KeyConflict,
    NotFound,
    WrongPassword,
)
from app.core.identity import keys
from app.core.identity.identities import Identities
from tests.helpers.strangers import new_stranger

PASSWORD = "correct horse battery staple"
MiB = 1024 * 1024


def _datadir(root: Path) -> DataDir:
    dd = DataDir(root, environ={})
    dd.initialise()
    return dd


@pytest.fixture(scope="module")
def ids(tmp_path_factory: pytest.TempPathFactory) -> Identities:
    return Identities(_datadir(tmp_path_factory.mktemp("node")))


@pytest.fixture(scope="module")
def own(ids: Identities) -> str:
    return ids.create(PASSWORD)


def _transport() -> bytes:
    return crypto.transport_public(crypto.new_transport_secret())


def test_create_writes_private_0600_and_verifying_pub(ids: Identities, own: str) -> None:
    private = ids.dir / own
    pub = ids.dir / f"{own}.pub"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert stat.S_IMODE(ids.dir.stat().st_mode) & 0o007 == 0  # not world-readable
    key = keys.parse_pub(pub.read_bytes(), expected_fp=own)
    assert key.fingerprint == own
    doc = json.loads(private.read_bytes())
    assert doc["fingerprint"] == own
    assert (doc["kdf"]["opslimit"], doc["kdf"]["memlimit"]) == keys.kdf_cost(ids.dd.settings)
    assert keys.DEVICE_ID_RE.fullmatch(doc["device"]) and ids.device_id(own) == doc["device"]
    assert key.devices == (keys.DeviceCert(doc["device"], 1, key.transport_public),)
    assert len(doc["kdf"]["salt"]) == 22  # 16 bytes, unpadded base64url
    assert ids.is_own(own) and ids.exists(own) and own in ids.own_fingerprints()
    assert crypto.transport_public(ids.transport_secret(own)) == key.transport_public
    assert sorted(n for n in os.listdir(ids.dir) if n.startswith(".tmp-")) == []


def test_private_file_is_born_0600(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = Identities(_datadir(tmp_path / "n"))
    modes: dict[str, int] = {}
    real_open = os.open

    def spy(path, flags, mode=0o777, *a, **kw):  # type: ignore[no-untyped-def]
        if flags & os.O_CREAT and Path(path).parent == store.dir:
            modes[Path(path).name] = mode
        return real_open(path, flags, mode, *a, **kw)

    monkeypatch.setattr(os, "open", spy)
    fp = store.create(PASSWORD)
    monkeypatch.undo()
    private_temps = [m for name, m in modes.items() if f"{fp}." in name and ".pub." not in name]
    assert private_temps == [0o600]


def test_sign_verifies_with_the_pub_alone_and_touches_it(ids: Identities, own: str) -> None:
    pub = ids.dir / f"{own}.pub"
    os.utime(pub, (1_000_000, 1_000_000))
    signature = ids.sign(own, PASSWORD, b"content")
    key = keys.parse_pub(pub.read_bytes(), expected_fp=own)
    assert crypto.verify(key.sign, crypto.CTX_USER_SIGNATURE, b"content", signature)
    assert pub.stat().st_mtime > 1_000_000
    assert ids.info(own).last_used == pub.stat().st_mtime


def test_wrong_password_changes_nothing(ids: Identities, own: str) -> None:
    private = ids.dir / own
    before = private.read_bytes()
    with pytest.raises(WrongPassword):
        ids.sign(own, "wrong", b"x")
    with pytest.raises(WrongPassword):
        ids.change_password(own, "wrong", "a new long password")
    with pytest.raises(WrongPassword):
        ids.delete(own, "wrong")
    with pytest.raises(WrongPassword):
        ids.delete(own)
    assert private.read_bytes() == before
    assert ids.is_own(own)


def test_change_password_keeps_fingerprint_and_rotates_transport(tmp_path: Path) -> None:
    store = Identities(_datadir(tmp_path / "n"))
    fp = store.create("old password!")
    transport = store.transport_secret(fp)
    before = store.public_key(fp)
    salt_before = store.private_key(fp).kdf["salt"]
    store.change_password(fp, "old password!", "new password!")
    after = store.public_key(fp)
    assert after.sign == before.sign and after.devices[0].serial == 2
    assert store.transport_secret(fp) != transport
    assert crypto.transport_public(store.transport_secret(fp)) == after.transport_public
    assert [(k.serial, k.secret) for k in store.transport_keys(fp)][1] == (1, transport)
    assert store.private_key(fp).fingerprint == fp
    assert store.private_key(fp).kdf["salt"] != salt_before
    assert stat.S_IMODE((store.dir / fp).stat().st_mode) == 0o600
    with pytest.raises(WrongPassword):
        store.sign(fp, "old password!", b"x")
    key = store.public_key(fp)
    assert crypto.verify(key.sign, crypto.CTX_USER_SIGNATURE, b"x",
                         store.sign(fp, "new password!", b"x"))
    assert [n for n in os.listdir(store.dir) if n.startswith(".")] == []


def test_import_foreign_key(ids: Identities) -> None:
    doc = new_stranger().document
    fp = ids.import_pub(doc)
    assert ids.exists(fp) and not ids.is_own(fp)
    assert (ids.dir / f"{fp}.pub").read_bytes() == doc
    assert ids.import_pub(doc.decode(), expected_fp=fp) == fp
    with pytest.raises(Forbidden):
        ids.sign(fp, "anything", b"x")
    with pytest.raises(Forbidden):
        ids.transport_secret(fp)


def test_import_merges_by_the_serial_rule_and_never_downgrades(ids: Identities) -> None:
    stranger = new_stranger()
    seed, doc = stranger.seed, stranger.document
    fp = ids.import_pub(doc)
    device = keys.parse_pub(doc).devices[0]
    # the same device, same serial, another transport key: refused, the held one stays
    rival = keys.certify(seed, [keys.DeviceCert(device.device_id, 1, _transport())])
    with pytest.raises(KeyConflict):
        ids.import_pub(rival.to_bytes())
    assert (ids.dir / f"{fp}.pub").read_bytes() == doc
    # a higher serial for the device replaces it; the old serial then is a downgrade
    newer = keys.certify(seed, [keys.DeviceCert(device.device_id, 2, _transport())])
    assert ids.import_pub(newer.to_bytes()) == fp
    assert ids.public_key(fp).devices == newer.devices
    with pytest.raises(KeyConflict):
        ids.import_pub(doc)
    # a second device is added after the first
    laptop = keys.certify(seed, [keys.DeviceCert("c" * 16, 1, _transport())])
    ids.import_pub(laptop.to_bytes())
    assert ids.public_key(fp).devices == newer.devices + laptop.devices


def test_import_rejects_bad_documents(ids: Identities) -> None:
    doc = new_stranger().document
    before = sorted(os.listdir(ids.dir))
    with pytest.raises(BadKeyDocument):
        ids.import_pub(doc[:-10] + (b"B" if doc[-10:-9] == b"A" else b"A") + doc[-9:])
    with pytest.raises(BadKeyDocument):
        ids.import_pub(doc, expected_fp="0" * 64)
    assert sorted(os.listdir(ids.dir)) == before


def test_unknown_and_malformed_fingerprints(ids: Identities) -> None:
    unknown = "0" * 64
    for call in (lambda: ids.public_key(unknown), lambda: ids.info(unknown),
                 lambda: ids.sign(unknown, "pw", b""), lambda: ids.delete(unknown),
                 lambda: ids.block(unknown)):
        with pytest.raises(NotFound):
            call()
    for bad in ("", "0" * 63, "0" * 65, "A" * 64, "../" + "0" * 61, "0" * 60 + ".pub",
                "g" * 64, "0" * 63 + "/", None, 5):
        with pytest.raises(BadFingerprint):
            ids.pub_path(bad)  # type: ignore[arg-type]
        with pytest.raises(BadFingerprint):
            ids.private_path(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["", "..", ".", "a/b", "../x", "a\\b", "-a", "_a", "A",
                                  "a" * 64, "a.b", "a b", "é", "a\x00"])
def test_bad_group_names(ids: Identities, name: str) -> None:
    with pytest.raises(BadName):
        ids.create_group(name)
    with pytest.raises(BadName):
        ids.members(name)


def test_groups_membership_and_deletion(tmp_path: Path) -> None:
    store = Identities(_datadir(tmp_path / "n"))
    doc = new_stranger().document
    fp = store.import_pub(doc)
    assert store.create_group("friends") is True
    assert store.create_group("friends") is False
    assert store.create_group("work") is True
    assert store.groups() == ["blocked", "friends", "work"]
    assert store.add_member("friends", fp) is True
    assert store.add_member("friends", fp) is False
    store.add_member("work", fp)
    assert (store.dir / "friends" / f"{fp}.pub").read_bytes() == doc
    assert store.info(fp).groups == ["friends", "work"]
    store.remove_member("work", fp)
    with pytest.raises(NotFound):
        store.remove_member("work", fp)
    with pytest.raises(NotFound):
        store.add_member("nosuch", fp)
    store.delete_group("friends")
    assert store.groups() == ["blocked", "work"]
    assert store.exists(fp)  # deleting a group never deletes the identity
    assert [n for n in os.listdir(store.dir) if n.startswith(".")] == []
    with pytest.raises(NotFound):
        store.delete_group("friends")


def test_blocked_is_reserved(tmp_path: Path) -> None:
    store = Identities(_datadir(tmp_path / "n"))
    own = store.create(PASSWORD)
    doc = new_stranger().document
    fp = store.import_pub(doc)
    with pytest.raises(Forbidden):
        store.delete_group("blocked")
    with pytest.raises(Conflict):
        store.block(own)
    assert store.block(fp) is True
    assert store.is_blocked(fp) and store.info(fp).blocked
    store.add_member("blocked", fp)
    store.create_group("friends")
    store.add_member("friends", fp)
    store.delete(fp)  # deleting the key keeps it blocked, drops other group copies
    assert not store.exists(fp) and store.is_blocked(fp)
    assert not (store.dir / "friends" / f"{fp}.pub").exists()
    listed = {i.fingerprint: i for i in store.list()}
    assert listed[fp].blocked and not listed[fp].own
    store.unblock(fp)
    assert not store.is_blocked(fp)
    with pytest.raises(NotFound):
        store.unblock(fp)


def test_delete_own_identity_with_password(tmp_path: Path) -> None:
    store = Identities(_datadir(tmp_path / "n"))
    fp = store.create(PASSWORD)
    store.delete(fp, PASSWORD)
    assert not (store.dir / fp).exists() and not (store.dir / f"{fp}.pub").exists()
    with pytest.raises(NotFound):
        store.info(fp)


def test_list_reports_own_groups_and_last_used(ids: Identities, own: str) -> None:
    listed = {i.fingerprint: i for i in ids.list()}
    assert listed[own].own and not listed[own].blocked
    assert listed[own].last_used == (ids.dir / f"{own}.pub").stat().st_mtime
    assert listed[own].public_key is None
    assert ids.info(own, with_key=True).public_key == (ids.dir / f"{own}.pub").read_text()
