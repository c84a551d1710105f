"""``diwan identity``: own key pairs and others' public keys."""

from __future__ import annotations

import sys
from dataclasses import asdict
from pathlib import Path
from typing import BinaryIO

import click

from ..core.base.errors import BadInput
from ..core.identity.identities import IdentityInfo
from ..core.identity.keys import MAX_PUB_BYTES, parse_pub
from ..core.network import identityexport
from ..schemas import identity as s
from . import passwords
from .base import FP, Cli, main, pass_cli, table, when, yes_no
from .passwords import password_options


@main.group()
def identity() -> None:
    """Create, list, show, delete identities; sign; change a password."""


@identity.command()
@password_options
@pass_cli
def create(cli: Cli, password_file: Path | None, password_stdin: bool) -> None:
    """Create an own identity (a key pair sealed by a password)."""
    ids = cli.identities()
    password = passwords.get_password(password_file, password_stdin, "New password",
                                      confirm=True, new=True)
    fp = ids.create(password)
    cli.emit(s.Created().dump({"fingerprint": fp, "own": True}), fp)


@identity.command("import")
@click.argument("source", type=click.File("rb"))
@password_options
@pass_cli
def import_(cli: Cli, source: BinaryIO, password_file: Path | None,
            password_stdin: bool) -> None:
    """Import someone's .pub document from SOURCE (a file, or - for stdin), or one of
    your own identities from its export file ('diwan identity export' on your other
    node): this node becomes another node of it (the password certifies its key)."""
    ids = cli.identities()
    data = source.read(identityexport.MAX_EXPORT_BYTES + 1)
    if identityexport.is_export(data):
        password = passwords.get_password(password_file, password_stdin, "Password")
        done = identityexport.import_identity(cli.datadir(), data, password)
        cli.emit({**done, "own": True}, [
            f"{done['fingerprint']} is now also an own identity of this node "
            f"(device {done['device']})",
            f"its other nodes: {', '.join(done['nodes']) or '-'}; 'diwan sync' pulls its posts"])
        return
    if len(data) > MAX_PUB_BYTES:
        data = data[:MAX_PUB_BYTES + 1]  # longer is refused as too long
    fp = ids.import_pub(data)
    cli.emit(s.Created().dump({"fingerprint": fp, "own": ids.is_own(fp)}), fp)


@identity.command("export")
@click.argument("fp", type=FP)
@click.argument("target", type=click.Path(dir_okay=False, path_type=Path))
@pass_cli
def export(cli: Cli, fp: str, target: Path) -> None:
    """Write the own identity FP to the file TARGET (mode 0600), to import on another node
    of yours ('diwan identity import TARGET' there). The key stays sealed by its
    password; keep the file as safe as the password."""
    identityexport.write_export(cli.datadir(), fp, target)
    cli.emit({"fingerprint": fp, "file": str(target)},
             f"wrote {target}: {fp} with its sealed key, for 'diwan identity import' "
             "on your other node")


def _row(cli: Cli, i: IdentityInfo) -> list[str]:
    flags = ",".join(f for f, on in (("own", i.own), ("blocked", i.blocked)) if on) or "-"
    groups = ",".join(g for g in i.groups if g != "blocked") or "-"
    return [cli.names()(i.fingerprint), i.fingerprint, flags, groups, when(i.last_used)]


@identity.command("list")
@pass_cli
def list_(cli: Cli) -> None:
    """List every identity: own or not, groups, blocked, last used."""
    infos = cli.identities().list()
    human = (table(["NAME", "FINGERPRINT", "FLAGS", "GROUPS", "LAST USED"],
                   [_row(cli, i) for i in infos]) if infos else "no identities")
    listed = [{**asdict(i), "display_name": cli.names()(i.fingerprint)} for i in infos]
    cli.emit(s.IdentityList().dump({"identities": listed}), human)


@identity.command()
@click.argument("fp", type=FP)
@click.option("--pub", is_flag=True, help="Print only the .pub document (to pass it on).")
@pass_cli
def show(cli: Cli, fp: str, pub: bool) -> None:
    """Show one identity and its .pub document."""
    info = cli.identities().info(fp, with_key=True)
    if pub and not cli.json:
        click.echo(info.public_key or "", nl=False)
        return
    human = [f"fingerprint: {info.fingerprint}", f"own:         {yes_no(info.own)}",
             f"blocked:     {yes_no(info.blocked)}",
             f"groups:      {', '.join(info.groups) or '-'}",
             f"last used:   {when(info.last_used)}"]
    if info.public_key:
        human += ["public key:"] + ["  " + line for line in info.public_key.splitlines()]
        human += ["devices:"] + _devices(cli, info)
    cli.emit(s.IdentityOut().dump({**asdict(info), "display_name": cli.names()(info.fingerprint)}),
             human)


def _devices(cli: Cli, info: IdentityInfo) -> list[str]:
    """One line per device the ``.pub`` certifies: its id (what ``retire-device`` takes),
    serial, and whether it is this node or retired."""
    own = cli.identities().device_id(info.fingerprint) if info.own else None
    key = parse_pub((info.public_key or "").encode("ascii"), expected_fp=info.fingerprint)
    live = key.live_devices
    return [f"  {d.device_id}  serial {d.serial}"
            + ("  (this node)" if d.device_id == own else "")
            + ("" if d in live else "  (retired)") for d in key.devices]


@identity.command()
@click.argument("fp", type=FP)
@password_options
@pass_cli
def delete(cli: Cli, fp: str, password_file: Path | None, password_stdin: bool) -> None:
    """Delete an identity (an own one only with its password)."""
    ids = cli.identities()
    password = None
    if ids.is_own(fp):
        password = passwords.get_password(password_file, password_stdin, f"Password of {fp}")
    ids.delete(fp, password)
    cli.emit({"ok": True, "changed": True}, f"deleted {fp}")


@identity.command()
@click.argument("fp", type=FP)
@click.argument("content")
@password_options
@pass_cli
def sign(cli: Cli, fp: str, content: str, password_file: Path | None,
         password_stdin: bool) -> None:
    """Sign CONTENT (UTF-8 text, or - for the raw bytes of stdin) with an own identity.

    Prints the base64url Ed25519 signature of "diwan/v2/user-signature" 0x00
    CONTENT (docs/protocol.md, "Signatures"), which anyone can check against
    the identity's .pub document. It can never pass as a post or a certificate.
    """
    if content == "-" and password_stdin:
        raise BadInput("stdin cannot carry both the password and the content; "
                       "use --password-file or the prompt", field="content")
    ids = cli.identities()
    ids.private_key(fp)  # NotFound / Forbidden before asking for a password
    # The content is read first: the prompt then reads the terminal, not the piped content.
    data = (sys.stdin.buffer.read() if content == "-"
            else passwords.utf8(content, "content"))
    password = passwords.get_password(password_file, password_stdin, f"Password of {fp}")
    out = s.sign_result(fp, ids.sign(fp, password, data))
    cli.emit(s.SignOut().dump(out), out["signature"])


@identity.command()
@click.argument("fp", type=FP)
@password_options
@click.option("--new-password-file",
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Read the new password from the first line of FILE.")
@pass_cli
def passwd(cli: Cli, fp: str, password_file: Path | None, password_stdin: bool,
           new_password_file: Path | None) -> None:
    """Change an own identity's password (the current one is required).

    The new password needs 12 or more characters. The transport key is rotated
    too: a copy of the old key file no longer serves as this node.

    With --password-stdin the first line of stdin is the current password and,
    unless --new-password-file is given, the second line is the new one.
    """
    ids = cli.identities()
    ids.private_key(fp)
    if password_stdin and new_password_file is None:
        old, new = passwords.from_stdin("password", "new password")
        passwords.check_new(new, "new password")
    else:
        old = passwords.get_password(password_file, password_stdin, "Current password")
        new = passwords.check_new(
            passwords.from_file(new_password_file, "new password") if new_password_file
            else passwords.prompt("New password", confirm=True, what="new password"),
            "new password")
    ids.change_password(fp, old, new)
    cli.emit({"ok": True, "changed": True}, f"password changed for {fp}")


@identity.command("rotate-transport")
@click.argument("fp")
@password_options
@pass_cli
def rotate_transport(cli: Cli, fp: str, password_file: Path | None,
                     password_stdin: bool) -> None:
    """Give this node a new transport key for FP (serial + 1).

    The previous key stays usable for transport_grace_seconds, so contacts that
    still encrypt to it are not locked out; they learn the new one from the .pub.
    """
    ids = cli.identities()
    ids.private_key(fp)
    password = passwords.get_password(password_file, password_stdin, f"Password of {fp}")
    serial = ids.rotate_transport(fp, password)
    _emit_certified(cli, fp, ids.device_id(fp), serial,
                    f"new transport key for {fp}: serial {serial}")


@identity.command("retire-device")
@click.argument("fp", type=FP)
@click.argument("device")
@password_options
@pass_cli
def retire_device(cli: Cli, fp: str, device: str, password_file: Path | None,
                  password_stdin: bool) -> None:
    """Retire DEVICE, another node of FP that was lost or stolen.

    Its certificate gets a higher serial with a key nobody holds; contacts and FP's
    other nodes learn it at their next exchange with a node of FP, and from then on
    the old node's transport key is refused everywhere. DEVICE is its 16-hex device id:
    diwan identity show FP lists the devices, marking this node's. A retired device id
    stays retired (a found laptop joins again as a new node, from an identity export).
    """
    ids = cli.identities()
    ids.private_key(fp)
    password = passwords.get_password(password_file, password_stdin, f"Password of {fp}")
    serial = ids.retire_device(fp, device, password)
    _emit_certified(cli, fp, device, serial, f"device {device} of {fp} retired: serial {serial}")


def _emit_certified(cli: Cli, fp: str, device: str, serial: int, human: str) -> None:
    """What rotate-transport and retire-device print: the device's new certificate and
    the ``.pub`` that now holds it."""
    out = {"fingerprint": fp, "device": device, "serial": serial,
           "public_key": cli.identities().pub_document(fp).decode("ascii")}
    cli.emit(s.RotateOut().dump(out), human)
