"""The ``diwan`` command line through click's CliRunner, over temporary data directories.

Outcomes are checked on disk and, for signatures, with plain PyNaCl against
the .pub file (not with the project's code). Identities cost ~0.1 s of
Argon2id each, so a module-scoped node holds the one most tests share.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result
from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

from app.cli import main, node
from app.core.base import crypto
from app.core.base.datadir import DataDir
from app.core.identity import keys, transport
from app.core.identity.identities import Identities
from tests.helpers.datadirs import PASSWORD, snapshot

OTHER_FP = "ab" * 32


def run(data_dir: Path, *args: str, input: str | bytes | None = None,
        env: dict[str, str | None] | None = None) -> Result:
    return CliRunner().invoke(main, ["--data-dir", str(data_dir), *args], input=input,
                              env=env, catch_exceptions=False)


def ok_json(data_dir: Path, *args: str, input: str | None = None) -> object:
    result = run(data_dir, "--json", *args, input=input)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def assert_error(result: Result, code: int, *fragments: str) -> None:
    assert result.exit_code == code, result.output
    assert result.stderr.startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in result.stderr
    assert "Traceback" not in result.output


def b64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


USER_CTX = b"diwan/v2/user-signature\x00"   # docs/protocol.md, "Signatures"


def verify_key_from_pub(pub_file: Path) -> VerifyKey:
    """Plain PyNaCl: the 'sign' line of the .pub document is the Ed25519 public key."""
    lines = pub_file.read_text("ascii").splitlines()
    raw = b64url(next(line.split(" ", 1)[1] for line in lines if line.startswith("sign ")))
    return VerifyKey(raw)


@pytest.fixture(scope="module")
def node_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data_dir = tmp_path_factory.mktemp("cli") / "node"
    assert run(data_dir, "init").exit_code == 0
    return data_dir


@pytest.fixture(scope="module")
def fp(node_dir: Path) -> str:
    out = ok_json(node_dir, "identity", "create", "--password-stdin", input=PASSWORD + "\n")
    assert out["own"] is True
    return out["fingerprint"]


@pytest.fixture()
def password_file(tmp_path: Path) -> Path:
    path = tmp_path / "password"
    path.write_text(PASSWORD + "\n")
    return path


@pytest.fixture()
def other(tmp_path: Path, node_dir: Path, fp: str) -> tuple[Path, str]:
    """A second node that has imported the first node's public key (not its own)."""
    data_dir = tmp_path / "other"
    run(data_dir, "init")
    result = run(data_dir, "identity", "import", str(node_dir / "identities" / f"{fp}.pub"))
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == fp
    return data_dir, fp


# init and the data directory -------------------------------------------------------

def test_init_creates_the_layout_with_private_modes(tmp_path: Path) -> None:
    data_dir = tmp_path / "fresh"
    result = run(data_dir, "init")
    assert result.exit_code == 0, result.output
    mode = lambda p: stat.S_IMODE(p.stat().st_mode)  # noqa: E731
    assert mode(data_dir) == 0o700
    assert mode(data_dir / "admin.token") == 0o600
    assert mode(data_dir / "identities") == 0o700
    assert mode(data_dir / "identities" / "blocked") == 0o700
    assert mode(data_dir / "state") == 0o700
    assert "admin_port = 8888" in (data_dir / "diwan.toml").read_text()
    token = (data_dir / "admin.token").read_text().strip()
    assert len(token) == 64 and int(token, 16) >= 0
    for shown in (str(data_dir), str(data_dir / "diwan.toml"), str(data_dir / "admin.token"),
                  "http://127.0.0.1:8888"):
        assert shown in result.stdout
    assert token not in result.output


def test_init_again_changes_nothing(tmp_path: Path) -> None:
    run(tmp_path / "n", "init")
    token = (tmp_path / "n" / "admin.token").read_bytes()
    out = ok_json(tmp_path / "n", "init")
    assert out["created"] is False
    assert out["token"] == str(tmp_path / "n" / "admin.token")
    assert (tmp_path / "n" / "admin.token").read_bytes() == token


def test_commands_refuse_a_directory_that_was_never_initialised(tmp_path: Path) -> None:
    assert_error(run(tmp_path / "nothing", "identity", "list"), 3, "diwan.toml", "init")
    assert not (tmp_path / "nothing").exists()


def test_data_dir_from_environment_then_cwd(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    data_dir = tmp_path / "envnode"
    run(data_dir, "init")
    toml = data_dir / "diwan.toml"
    toml.write_text(toml.read_text().replace("admin_port = 8888", "admin_port = 9123"))
    runner = CliRunner()
    by_env = runner.invoke(main, ["config", "get", "admin_port"],
                           env={"DIWAN_DATA_DIR": str(data_dir)})
    assert by_env.stdout.strip() == "9123"
    monkeypatch.chdir(data_dir)
    by_cwd = runner.invoke(main, ["config", "get", "admin_port"],
                           env={"DIWAN_DATA_DIR": None, "DIWAN_ADMIN_PORT": "9555"})
    assert by_cwd.stdout.strip() == "9555"  # DIWAN_* variables override diwan.toml


def test_config_show_lists_every_setting_and_get_refuses_unknown(node_dir: Path) -> None:
    from app.core.base.config import SETTINGS

    shown = ok_json(node_dir, "config", "show")
    assert set(shown) == {s.name for s in SETTINGS}
    assert shown["peer_port"] == 8889
    assert_error(run(node_dir, "config", "get", "no_such"), 2, "no_such")


# identities ------------------------------------------------------------------------

def test_create_writes_a_private_key_file_and_a_pub(node_dir: Path, fp: str) -> None:
    private = node_dir / "identities" / fp
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    pub = node_dir / "identities" / f"{fp}.pub"
    assert hashlib.sha256(bytes(verify_key_from_pub(pub))).hexdigest() == fp


def test_list_and_show(node_dir: Path, fp: str) -> None:
    listed = ok_json(node_dir, "identity", "list")
    mine = [i for i in listed["identities"] if i["fingerprint"] == fp]
    assert mine and mine[0]["own"] is True and mine[0]["blocked"] is False
    assert set(mine[0]) >= {"fingerprint", "own", "groups", "blocked", "last_used"}
    human = run(node_dir, "identity", "list").stdout
    assert fp in human and "own" in human
    pub = (node_dir / "identities" / f"{fp}.pub").read_text()
    shown = ok_json(node_dir, "identity", "show", fp)
    assert shown["public_key"] == pub and shown["own"] is True
    assert run(node_dir, "identity", "show", fp, "--pub").stdout == pub
    assert fp in run(node_dir, "identity", "show", fp).stdout


def test_sign_verifies_with_plain_pynacl(node_dir: Path, fp: str, password_file: Path) -> None:
    key = verify_key_from_pub(node_dir / "identities" / f"{fp}.pub")
    result = run(node_dir, "identity", "sign", fp, "hello, diwan",
                 "--password-file", str(password_file))
    assert result.exit_code == 0, result.output
    signature = b64url(result.stdout.strip())
    assert key.verify(USER_CTX + b"hello, diwan", signature) == USER_CTX + b"hello, diwan"
    with pytest.raises(BadSignatureError):
        key.verify(USER_CTX + b"hello, diwan!", signature)
    with pytest.raises(BadSignatureError):      # never a raw signature of the content
        key.verify(b"hello, diwan", signature)


def test_sign_stdin_content_and_json(node_dir: Path, fp: str, password_file: Path) -> None:
    key = verify_key_from_pub(node_dir / "identities" / f"{fp}.pub")
    content = b"line one\nline two\n\xff raw bytes"
    out = ok_json(node_dir, "identity", "sign", fp, "-", "--password-file", str(password_file),
                  input=content)  # type: ignore[arg-type]
    assert out["fingerprint"] == fp
    signature = bytes.fromhex(out["signature_hex"])
    assert b64url(out["signature"]) == signature
    assert bytes.fromhex(out["context_hex"]) == USER_CTX
    assert out["context"] == "diwan/v2/user-signature"
    key.verify(USER_CTX + content, signature)


def test_sign_with_prompted_password(node_dir: Path, fp: str) -> None:
    result = run(node_dir, "identity", "sign", fp, "x", input=PASSWORD + "\n")
    assert result.exit_code == 0, result.output
    assert PASSWORD not in result.output  # hidden input is not echoed
    verify_key_from_pub(node_dir / "identities" / f"{fp}.pub").verify(
        USER_CTX + b"x", b64url(result.stdout.strip()))


def test_wrong_password_is_a_clear_error(node_dir: Path, fp: str) -> None:
    private = (node_dir / "identities" / fp).read_bytes()
    result = run(node_dir, "identity", "sign", fp, "x", "--password-stdin", input="wrong\n")
    assert_error(result, 5, "password is wrong")
    assert result.stdout == ""
    assert (node_dir / "identities" / fp).read_bytes() == private


def test_passwd_changes_the_password(tmp_path: Path) -> None:
    data_dir = tmp_path / "pw"
    run(data_dir, "init")
    old, new, third = "old password!", "new password!", "third password!"
    fp = run(data_dir, "identity", "create", "--password-stdin",
             input=f"{old}\n").stdout.strip()
    sign = ("identity", "sign", fp, "x", "--password-stdin")
    assert_error(run(data_dir, "identity", "passwd", fp, "--password-stdin",
                     input=f"bad\n{new}\n"), 5, "password is wrong")
    assert run(data_dir, *sign, input=f"{old}\n").exit_code == 0
    result = run(data_dir, "identity", "passwd", fp, "--password-stdin", input=f"{old}\n{new}\n")
    assert result.exit_code == 0, result.output
    assert_error(run(data_dir, *sign, input=f"{old}\n"), 5, "password is wrong")
    assert run(data_dir, *sign, input=f"{new}\n").exit_code == 0
    # prompted: current, new, confirmation
    result = run(data_dir, "identity", "passwd", fp, input=f"{new}\n{third}\n{third}\n")
    assert result.exit_code == 0, result.output
    assert run(data_dir, *sign, input=f"{third}\n").exit_code == 0


def test_a_short_new_password_is_refused_at_every_entry_point(tmp_path: Path) -> None:
    data_dir = tmp_path / "short"
    run(data_dir, "init")
    short = tmp_path / "short.txt"
    short.write_text("eleven char\n")
    for args, given in ((("--password-stdin",), "eleven char\n"),
                        (("--password-file", str(short)), None),
                        ((), "eleven char\neleven char\n")):
        result = run(data_dir, "identity", "create", *args, input=given)
        _short_refused(result)
    assert list((data_dir / "identities").glob("*.pub")) == []
    good = "twelve chars"
    fp = run(data_dir, "identity", "create", "--password-stdin", input=f"{good}\n").stdout.strip()
    for args, given in ((("--password-stdin",), f"{good}\nshort\n"),
                        (("--password-stdin", "--new-password-file", str(short)), f"{good}\n"),
                        (("--password-stdin",), None)):
        if given is None:   # prompted new password
            result = run(data_dir, "identity", "passwd", fp, "--password-file",
                         str(_write(tmp_path / "cur.txt", good)), input="short\nshort\n")
        else:
            result = run(data_dir, "identity", "passwd", fp, *args, input=given)
        _short_refused(result)
    assert run(data_dir, "identity", "sign", fp, "x", "--password-stdin",
               input=f"{good}\n").exit_code == 0


def _short_refused(result: Result) -> None:
    assert result.exit_code == 2, result.output
    assert "error: the new password must be at least 12 characters long" in result.stderr \
        or "error: the password must be at least 12 characters long" in result.stderr
    assert "Traceback" not in result.output


def _write(path: Path, text: str) -> Path:
    path.write_text(text + "\n")
    return path


def test_rotate_transport_from_the_cli(tmp_path: Path) -> None:
    data_dir = tmp_path / "rot"
    run(data_dir, "init")
    good = "twelve chars"
    fp = run(data_dir, "identity", "create", "--password-stdin", input=f"{good}\n").stdout.strip()
    before = (data_dir / "identities" / f"{fp}.pub").read_text()
    assert_error(run(data_dir, "identity", "rotate-transport", fp, "--password-stdin",
                     input="wrong\n"), 5, "password is wrong")
    out = ok_json(data_dir, "identity", "rotate-transport", fp, "--password-stdin",
                  input=f"{good}\n")
    after = (data_dir / "identities" / f"{fp}.pub").read_text()
    assert out["serial"] == 2 and out["public_key"] == after != before
    assert f"device {out['device']} 2 " in after


def test_retire_device_from_the_cli(tmp_path: Path) -> None:
    data_dir = tmp_path / "retire"
    run(data_dir, "init")
    good = "twelve chars"
    fp = run(data_dir, "identity", "create", "--password-stdin", input=f"{good}\n").stdout.strip()
    dd = DataDir(data_dir, environ={})
    ids = Identities(dd)
    other = keys.DeviceCert("0123456789abcdef", 1,
                            crypto.x25519_public(crypto.new_transport_secret()))
    transport.write_pub(ids, fp, keys.with_device(ids.open_seed(fp, good), ids.public_key(fp),
                                                  other))
    assert_error(run(data_dir, "identity", "retire-device", fp, "fedcba9876543210",
                     "--password-stdin", input=f"{good}\n"), 3, "names no device")
    assert_error(run(data_dir, "identity", "retire-device", fp, "0123456789abcdef",
                     "--password-stdin", input="wrong\n"), 5, "password is wrong")
    out = ok_json(data_dir, "identity", "retire-device", fp, "0123456789abcdef",
                  "--password-stdin", input=f"{good}\n")
    after = (data_dir / "identities" / f"{fp}.pub").read_text()
    assert out["serial"] == 2**53 - 1 and out["device"] == "0123456789abcdef"
    assert out["public_key"] == after and f"device 0123456789abcdef {2**53 - 1} " in after
    shown = run(data_dir, "identity", "show", fp).stdout  # how the owner finds the id
    assert f"  {ids.device_id(fp)}  serial 1  (this node)\n" in shown
    assert f"  0123456789abcdef  serial {2**53 - 1}  (retired)\n" in shown


def test_delete_own_needs_the_password(tmp_path: Path, password_file: Path) -> None:
    data_dir = tmp_path / "del"
    run(data_dir, "init")
    fp = run(data_dir, "identity", "create", "--password-file",
             str(password_file)).stdout.strip()
    files = [data_dir / "identities" / fp, data_dir / "identities" / f"{fp}.pub"]
    assert_error(run(data_dir, "identity", "delete", fp, "--password-stdin", input="no\n"),
                 5, "password is wrong")
    assert all(f.exists() for f in files)
    result = run(data_dir, "identity", "delete", fp, "--password-file", str(password_file))
    assert result.exit_code == 0, result.output
    assert not any(f.exists() for f in files)
    assert_error(run(data_dir, "identity", "show", fp), 3, "unknown identity")


def test_import_and_delete_someone_elses_key(other: tuple[Path, str]) -> None:
    data_dir, fp = other
    shown = ok_json(data_dir, "identity", "show", fp)
    assert shown["own"] is False
    assert run(data_dir, "identity", "delete", fp).exit_code == 0  # no password asked
    assert not (data_dir / "identities" / f"{fp}.pub").exists()


def test_import_refuses_a_document_that_does_not_verify(tmp_path: Path, node_dir: Path,
                                                        fp: str) -> None:
    doc = (node_dir / "identities" / f"{fp}.pub").read_text()
    tampered = tmp_path / "bad.pub"
    sign_line = next(line for line in doc.splitlines() if line.startswith("sign "))
    flipped = sign_line[:5] + ("B" if sign_line[5] == "A" else "A") + sign_line[6:]
    tampered.write_text(doc.replace(sign_line, flipped))
    assert_error(run(node_dir, "identity", "import", str(tampered)), 2)


def test_sign_as_someone_else_is_refused(other: tuple[Path, str]) -> None:
    data_dir, fp = other
    assert_error(run(data_dir, "identity", "sign", fp, "x", "--password-stdin", input="p\n"),
                 5, "not one of this node's own identities")


# groups and blocking ---------------------------------------------------------------

def test_groups(node_dir: Path, fp: str) -> None:
    assert ok_json(node_dir, "group", "create", "friends")["changed"] is True
    assert ok_json(node_dir, "group", "create", "friends")["changed"] is False
    assert (node_dir / "identities" / "friends").is_dir()
    assert ok_json(node_dir, "group", "add", "friends", fp)["changed"] is True
    assert (node_dir / "identities" / "friends" / f"{fp}.pub").is_file()
    assert ok_json(node_dir, "group", "show", "friends") == {
        "name": "friends", "members": [fp], "reserved": False}
    assert "friends" in ok_json(node_dir, "identity", "show", fp)["groups"]
    listed = ok_json(node_dir, "group", "list")["groups"]
    assert {"name": "blocked", "members": [], "reserved": True} in listed
    assert "friends" in run(node_dir, "group", "list").stdout
    assert run(node_dir, "group", "remove", "friends", fp).exit_code == 0
    assert not (node_dir / "identities" / "friends" / f"{fp}.pub").exists()
    assert_error(run(node_dir, "group", "remove", "friends", fp), 3, "not in friends")
    assert run(node_dir, "group", "delete", "friends").exit_code == 0
    assert not (node_dir / "identities" / "friends").exists()
    assert_error(run(node_dir, "group", "show", "friends"), 3, "no group named friends")
    assert (node_dir / "identities" / f"{fp}.pub").is_file()  # the identity itself stays


@pytest.mark.parametrize("name", ["../etc", "a/b", ".hidden", "UPPER", "x" * 64, ""])
def test_bad_group_names_are_refused(node_dir: Path, name: str) -> None:
    before = snapshot(node_dir)
    assert_error(run(node_dir, "group", "create", name), 2)
    assert snapshot(node_dir) == before


def test_the_blocked_group_is_reserved(node_dir: Path) -> None:
    assert_error(run(node_dir, "group", "delete", "blocked"), 5, "reserved")


def test_block_and_unblock(other: tuple[Path, str]) -> None:
    data_dir, fp = other
    copy = data_dir / "identities" / "blocked" / f"{fp}.pub"
    assert ok_json(data_dir, "block", fp)["changed"] is True
    assert copy.is_file()
    assert ok_json(data_dir, "identity", "show", fp)["blocked"] is True
    assert "blocked" in run(data_dir, "identity", "list").stdout
    assert run(data_dir, "unblock", fp).exit_code == 0
    assert not copy.exists()
    assert_error(run(data_dir, "unblock", fp), 3, "not in blocked")


def test_blocking_an_own_identity_is_refused(node_dir: Path, fp: str) -> None:
    assert_error(run(node_dir, "block", fp), 4, "own identity")


def test_unknown_identity_is_not_found(node_dir: Path) -> None:
    assert_error(run(node_dir, "block", OTHER_FP), 3, "unknown identity")


@pytest.mark.parametrize("bad", ["abc", "AB" * 32, "ab" * 31 + "zz", "../" + "a" * 61,
                                 "ab" * 32 + "0"])
@pytest.mark.parametrize("command", [
    ("identity", "show", "{}"), ("identity", "delete", "{}"),
    ("identity", "sign", "{}", "x", "--password-stdin"),
    ("identity", "passwd", "{}", "--password-stdin"),
    ("block", "{}"), ("unblock", "{}"), ("group", "add", "blocked", "{}"),
    ("group", "remove", "blocked", "{}")])
def test_bad_fingerprint_exits_2(node_dir: Path, bad: str, command: tuple[str, ...]) -> None:
    result = run(node_dir, *(a.format(bad) for a in command), input="pw\npw\n")
    assert_error(result, 2, "fingerprint")


# passwords only by prompt, file or stdin ---------------------------------------------

def _all_commands(group: click.Group, ctx: click.Context) -> list[click.Command]:
    found: list[click.Command] = []
    for name in group.list_commands(ctx):
        cmd = group.get_command(ctx, name)
        assert cmd is not None
        found.append(cmd)
        if isinstance(cmd, click.Group):
            found += _all_commands(cmd, ctx)
    return found


def test_no_option_takes_a_password_as_its_value() -> None:
    ctx = click.Context(main)
    commands = _all_commands(main, ctx)
    assert {"create", "sign", "passwd", "delete"} <= {c.name for c in commands}
    for cmd in [main, *commands]:
        for param in cmd.params:
            assert not getattr(param, "envvar", None), (cmd.name, param.name)
            if "password" in (param.name or ""):
                assert isinstance(param, click.Option), (cmd.name, param.name)
                assert param.is_flag or isinstance(param.type, click.Path), (cmd.name, param.name)
    assert main.context_settings.get("auto_envvar_prefix") is None


@pytest.mark.parametrize("args", [
    ("identity", "create", "--password", PASSWORD),
    ("identity", "create", f"--password={PASSWORD}"),
    ("identity", "create", PASSWORD),
    ("identity", "sign", "{fp}", "x", PASSWORD),
    ("identity", "delete", "{fp}", PASSWORD),
    ("identity", "passwd", "{fp}", "--new-password", PASSWORD),
])
def test_a_password_on_the_command_line_is_a_usage_error(node_dir: Path, fp: str,
                                                         args: tuple[str, ...]) -> None:
    before = snapshot(node_dir)
    result = run(node_dir, *(a.format(fp=fp) for a in args), input="")
    assert result.exit_code == 2, result.output
    assert "Usage:" in result.stderr
    assert snapshot(node_dir) == before


def test_create_prompts_twice_and_refuses_a_mismatch(tmp_path: Path) -> None:
    data_dir = tmp_path / "prompt"
    run(data_dir, "init")
    result = run(data_dir, "identity", "create", input="one\ntwo\n")
    assert result.exit_code != 0
    assert "do not match" in result.stderr
    assert not any(p.name.endswith(".pub") for p in (data_dir / "identities").iterdir())


@pytest.mark.parametrize("content", ["", "\n", "\nsecond line\n"])
def test_an_empty_password_is_refused(tmp_path: Path, node_dir: Path, content: str) -> None:
    path = tmp_path / "empty"
    path.write_text(content)
    assert_error(run(node_dir, "identity", "create", "--password-file", str(path)), 2, "empty")
    assert_error(run(node_dir, "identity", "create", "--password-stdin", input=content),
                 2, "empty")


def test_password_limits(tmp_path: Path, node_dir: Path, fp: str) -> None:
    from app.schemas.identity import MAX_PASSWORD

    long = tmp_path / "long"
    long.write_text("x" * (MAX_PASSWORD + 1))
    assert_error(run(node_dir, "identity", "create", "--password-file", str(long)), 2, "longer")
    both = ("identity", "create", "--password-file", str(long), "--password-stdin")
    assert_error(run(node_dir, *both, input="x\n"), 2, "not both")
    stdin_twice = ("identity", "sign", fp, "-", "--password-stdin")
    assert_error(run(node_dir, *stdin_twice, input="x\n"), 2, "stdin")
    latin1 = tmp_path / "latin1"
    latin1.write_bytes("caf\xe9\n".encode("latin-1"))
    assert_error(run(node_dir, "identity", "create", "--password-file", str(latin1)), 2, "UTF-8")


def test_a_crlf_password_file_means_the_same_password(tmp_path: Path, node_dir: Path,
                                                      fp: str) -> None:
    path = tmp_path / "crlf"
    path.write_bytes(PASSWORD.encode() + b"\r\nignored\r\n")
    result = run(node_dir, "identity", "sign", fp, "x", "--password-file", str(path))
    assert result.exit_code == 0, result.output


# up (without starting anything: see test_cli_up.py for the real processes) -----------

def test_up_without_a_procfile_is_a_clear_error(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(node, "PROCFILE", tmp_path / "nowhere" / "Procfile")
    assert_error(run(tmp_path / "n", "up"), 3, "no Procfile at", str(tmp_path / "nowhere"))


def test_up_runs_honcho_on_the_procfile_in_the_data_dir(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def fake_supervise(cmd: list[str], *, env: dict[str, str], cwd: Path,
                       forwarded: list[int] | None = None) -> int:
        calls.append((cmd, env, cwd))
        return 3

    monkeypatch.setattr(node, "supervise", fake_supervise)
    data_dir = tmp_path / "upnode"
    result = run(data_dir, "up", env={"DIWAN_ADMIN_PORT": "18123"})
    assert result.exit_code == 3  # honcho's exit status
    assert (data_dir / "admin.token").is_file()  # initialised first
    assert "http://127.0.0.1:18123" in result.stdout
    assert str(data_dir / "admin.token") in result.stdout
    [(cmd, env, cwd)] = calls
    root = Path(__file__).resolve().parents[2]
    assert cmd == [sys.executable, "-m", "honcho", "start", "-f",
                   str(root / "app" / "run" / "Procfile"), "-d", str(data_dir)]
    assert cwd == data_dir
    assert env["DIWAN_DATA_DIR"] == str(data_dir)
    assert env["PATH"].split(os.pathsep)[0] == str(Path(sys.executable).parent)


def test_a_missing_password_file_is_a_usage_error(tmp_path: Path, node_dir: Path) -> None:
    result = run(node_dir, "identity", "create", "--password-file", str(tmp_path / "none"))
    assert result.exit_code == 2
    assert "does not exist" in result.stderr
