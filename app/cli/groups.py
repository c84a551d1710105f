"""``diwan group`` and ``diwan block|unblock``: groups of identities and the blocked list."""

from __future__ import annotations

from typing import Any

import click

from ..core.base import names
from ..core.identity.identities import Identities
from ..schemas import identity as s
from .base import FP, Cli, main, pass_cli, table


def _group(ids: Identities, name: str) -> dict[str, Any]:
    return {"name": name, "members": ids.members(name), "reserved": name == names.BLOCKED}


def _ok(changed: bool) -> dict[str, Any]:
    return dict(s.Ok().dump({"ok": True, "changed": changed}))


@main.group()
def group() -> None:
    """Groups of identities; 'blocked' is reserved.

    A group is a sub-directory of identities/ holding copies of .pub files.
    """


@group.command("list")
@pass_cli
def list_(cli: Cli) -> None:
    """Every group with its number of members."""
    ids = cli.identities()
    groups = [_group(ids, g) for g in ids.groups()]
    rows = [[g["name"], str(len(g["members"])), "reserved" if g["reserved"] else ""]
            for g in groups]
    cli.emit(s.GroupList().dump({"groups": groups}), table(["GROUP", "MEMBERS", ""], rows))


@group.command()
@click.argument("name")
@pass_cli
def show(cli: Cli, name: str) -> None:
    """One group and its members (name and fingerprint)."""
    ids = cli.identities()
    ids.group_dir(name)
    g = _group(ids, name)
    human = table(["NAME", "FINGERPRINT"], [[cli.names()(fp), fp] for fp in g["members"]]) \
        if g["members"] else [f"{name} has no members"]
    cli.emit(s.GroupOut().dump(g), human)


@group.command()
@click.argument("name")
@pass_cli
def create(cli: Cli, name: str) -> None:
    """Create a group (nothing happens if it exists)."""
    changed = cli.identities().create_group(name)
    cli.emit(_ok(changed), f"created group {name}" if changed else f"group {name} exists")


@group.command()
@click.argument("name")
@pass_cli
def delete(cli: Cli, name: str) -> None:
    """Delete a group (its copies of .pub files, never the identities)."""
    cli.identities().delete_group(name)
    cli.emit(_ok(True), f"deleted group {name}")


@group.command()
@click.argument("name")
@click.argument("fp", type=FP)
@pass_cli
def add(cli: Cli, name: str, fp: str) -> None:
    """Add a known identity FP to group NAME."""
    changed = cli.identities().add_member(name, fp)
    cli.emit(_ok(changed), f"added {fp} to {name}" if changed else f"{fp} is already in {name}")


@group.command()
@click.argument("name")
@click.argument("fp", type=FP)
@pass_cli
def remove(cli: Cli, name: str, fp: str) -> None:
    """Remove identity FP from group NAME."""
    cli.identities().remove_member(name, fp)
    cli.emit(_ok(True), f"removed {fp} from {name}")


@main.command()
@click.argument("fp", type=FP)
@pass_cli
def block(cli: Cli, fp: str) -> None:
    """Block FP: the node ignores its content from now on."""
    changed = cli.identities().block(fp)
    cli.emit(_ok(changed), f"blocked {fp}" if changed else f"{fp} was already blocked")


@main.command()
@click.argument("fp", type=FP)
@pass_cli
def unblock(cli: Cli, fp: str) -> None:
    """Unblock FP."""
    cli.identities().unblock(fp)
    cli.emit(_ok(True), f"unblocked {fp}")
