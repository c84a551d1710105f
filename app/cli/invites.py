"""``diwan invite`` and ``diwan invites``: invite a friend with one line (or a QR code)."""

from __future__ import annotations

import time
from pathlib import Path

import click

from ..core.base.fsio import write_atomic
from ..core.network import invitestate
from ..schemas.invites import InviteOut, IssuedList
from . import passwords
from .base import FP, Cli, main, pass_cli, table, when
from .network import _following
from .passwords import password_options


@main.command()
@click.argument("identity", type=FP, required=False)
@click.option("--no-token", is_flag=True,
              help="No one-time token: your node does not follow the friend back by itself.")
@click.option("--expires", "expires_in", type=click.IntRange(60, 365 * 86400),
              metavar="SECONDS", help="Valid for SECONDS (default: the invite_expiry setting).")
@click.option("--qr/--no-qr", default=True, help="Draw the QR code in the terminal.")
@click.option("--png", "png_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the QR code as a PNG image to this file.")
@click.option("--svg", "svg_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the QR code as an SVG image to this file.")
@password_options
@pass_cli
def invite(cli: Cli, identity: str | None, no_token: bool, expires_in: int | None, qr: bool,
           png_path: Path | None, svg_path: Path | None, password_file: Path | None,
           password_stdin: bool) -> None:
    """Make an invite for IDENTITY: one line (and a QR code) to give a friend.

    It holds your key, where your node answers and when it expires, signed with
    your key (the password opens it). Your friend runs 'diwan contact add
    <invite>'; with the one-time token (the default) your node then follows
    them back on their first request: one invite, a mutual follow.
    """
    from ..core.network import inviteqr  # segno only here: every CLI start pays for imports

    dd = cli.datadir()
    fp = _following(cli.identities(), identity)
    password = passwords.get_password(password_file, password_stdin, f"Password of {fp[:16]}")
    seed = cli.identities().open_seed(fp, password)
    text, inv = invitestate.make(dd, fp, seed, token=not no_token, expiry=expires_in)
    if png_path is not None:
        write_atomic(png_path, inviteqr.png(text))
    if svg_path is not None:
        write_atomic(svg_path, inviteqr.svg(text).encode("utf-8"))
    human = [text, "", f"for {fp}, reachable at {', '.join(inv.addresses)}",
             f"expires {when(inv.expires)}" + ("; one-time token: they will be followed back"
                                              if inv.token else "")]
    if qr:
        human = [inviteqr.terminal(text), *human]
    cli.emit(InviteOut().dump({"invite": text, **inv.to_dict()}), human)


@main.command()
@pass_cli
def invites(cli: Cli) -> None:
    """The invites with a one-time token this node made: waiting, used (by whom), expired."""
    made = invitestate.issued(cli.datadir(), time.time())
    rows = [[i["id"], cli.names()(i["identity"]), when(i["created"]), when(i["expires"]),
             i["state"] + (f" by {cli.names()(i['used_by'])}" if i["used_by"] else ""),
             str(i["refused"])] for i in made]
    human = table(["ID", "FOR", "MADE", "EXPIRES", "STATE", "REFUSED"], rows) if rows \
        else ["no invites made yet; make one with 'diwan invite'"]
    cli.emit(IssuedList().dump({"invites": made}), human)
