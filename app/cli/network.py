"""``diwan contact``, ``diwan sync``, ``diwan gc`` and ``diwan lying-peers``: the node's network."""

from __future__ import annotations

import sys
from typing import Any

import click

from ..core.base.errors import BadInput
from ..core.identity.identities import Identities
from ..core.identity.petnames import Petnames, short
from ..core.network.contacts import Contact, Contacts
from ..core.network.keylookup import LyingPeers, add_contact
from ..core.network.sync import SyncStatus, sync_all
from ..core.network.views import contact_view
from ..core.upkeep.gc import explain
from ..core.upkeep.gc import gc as collect
from ..schemas.network import ContactList, ContactOut, LyingList, StatusList
from .base import EXIT_PEER, FP, Cli, main, pass_cli, table, when


def _contact(cli: Cli, contact: Contact) -> dict[str, Any]:
    return contact_view(cli.datadir(), contact, cli.names())


def _short(fp: str | None) -> str:
    return short(fp) if fp else "-"


def _following(ids: Identities, identity: str | None) -> str:
    if identity:
        return identity
    own = ids.own_fingerprints()
    if len(own) != 1:
        raise BadInput("choose the own identity that follows this contact with --identity "
                       f"(this node has {len(own)})", field="identity")
    return own[0]


@main.group()
def contact() -> None:
    """The address book: whose feeds this node pulls, from where, as which own identity."""


@contact.command("list")
@pass_cli
def list_(cli: Cli) -> None:
    """Every contact with its address, following identity and last sync."""
    contacts = [_contact(cli, c) for c in Contacts(cli.datadir()).list()]
    rows = [[c["display_name"], short(c["fingerprint"]), c["address"],
             cli.names()(c["identity"]), c["sync"]["state"], when(c["sync"]["last_success"])]
            for c in contacts]
    human = table(["NAME", "CONTACT", "ADDRESS", "AS", "SYNC", "LAST SUCCESS"], rows) if rows \
        else ["no contacts yet; add one with 'diwan contact add FP ADDRESS'"]
    cli.emit(ContactList().dump({"contacts": contacts}), human)


@contact.command()
@click.argument("fp", type=FP)
@pass_cli
def show(cli: Cli, fp: str) -> None:
    """One contact and its sync status."""
    data = _contact(cli, Contacts(cli.datadir()).get(fp))
    st = data["sync"]
    cli.emit(ContactOut().dump(data), [
        f"contact       {data['fingerprint']}", f"address       {data['address']}",
        *[f"learned       {a}" for a in data.get("learned", [])],
        f"answered at   {st['address'] or '-'}",
        f"followed as   {data['identity']}", f"sync          {st['state']}",
        f"last success  {when(st['last_success'])}", f"last error    {st['last_error'] or '-'}",
        f"posts         {st['posts_received']} received, {st['rejected']} refused"])


@contact.command()
@click.argument("fp", type=FP)
@click.argument("address")
@click.option("--identity", "-i", type=FP, metavar="OWN_FP",
              help="The own identity that follows FP (needed if the node has several).")
@click.option("--replace", is_flag=True,
              help="Replace the address (or following identity) of an existing contact.")
@pass_cli
def add(cli: Cli, fp: str, address: str, identity: str | None, replace: bool) -> None:
    """Follow FP, whose node is at ADDRESS (http://host:port).

    If FP's key is unknown it is fetched from ADDRESS by fingerprint; a wrong
    answer is an error (unauthenticated, so not recorded as a lie; try again).
    Changing an existing contact's address or identity needs --replace.
    """
    dd = cli.datadir()
    following = _following(Identities(dd), identity)
    old = Contacts(dd).find(fp)
    found, created, fetched = add_contact(dd, fp, address, following, replace=replace)
    data = {**_contact(cli, found), "created": created, "key_fetched": fetched}
    if created:
        human = f"added contact {fp} at {found.address}"
    elif old is not None and old.address != found.address:
        human = f"updated contact {fp}: address {old.address} replaced by {found.address}"
    else:
        human = f"updated contact {fp} at {found.address}"
    cli.emit(ContactOut().dump(data), human + (" (key fetched)" if fetched else ""))


@contact.command()
@click.argument("fp", type=FP)
@click.argument("petname", required=False)
@click.option("--clear", is_flag=True, help="Forget FP's petname.")
@pass_cli
def name(cli: Cli, fp: str, petname: str | None, clear: bool) -> None:
    """Give FP a petname: a private name only this node knows, usable wherever a
    fingerprint is asked for. Without PETNAME, print FP's current name."""
    book = Petnames(cli.datadir())
    if clear:
        changed = book.clear(fp)
        cli.emit({"fingerprint": fp, "petname": None, "changed": changed},
                 f"{short(fp)} has no petname now")
        return
    if petname is None:
        current = book.get(fp)
        cli.emit({"fingerprint": fp, "petname": current,
                  "display_name": cli.names()(fp)},
                 current or f"{short(fp)} has no petname")
        return
    old = book.set(fp, petname)
    cli.emit({"fingerprint": fp, "petname": petname, "changed": old != petname},
             f"{short(fp)} is now {petname}" + (f" (was {old})" if old and old != petname
                                                  else ""))


@contact.command()
@click.argument("fp", type=FP)
@pass_cli
def remove(cli: Cli, fp: str) -> None:
    """Stop following FP (its key and posts stay)."""
    Contacts(cli.datadir()).remove(fp)
    cli.emit({"ok": True, "changed": True}, f"removed contact {fp}")


def _status_row(cli: Cli, st: SyncStatus) -> list[str]:
    outcome = st.skipped or (f"failed: {st.last_error}" if st.last_error else "ok")
    return [cli.names()(st.fingerprint), str(st.posts_last_run), str(st.rejected_last_run),
            outcome]


@main.command()
@click.argument("fp", type=FP, required=False)
@click.option("--full", is_flag=True,
              help="Compare the whole feed with what is held; fetch what is missing.")
@pass_cli
def sync(cli: Cli, fp: str | None, full: bool) -> None:
    """Pull new posts from every contact (or FP only) now, back-off or not.

    Exits 1 if any contact failed (the table says why).
    """
    dd = cli.datadir()
    only = [fp] if fp else None
    total = 1 if fp else len(Contacts(dd).list())
    with click.progressbar(length=total, label="syncing", file=sys.stderr,
                           item_show_func=lambda st: _short(st.fingerprint) if st else None
                           ) as bar:
        results = sync_all(dd, only=only, force=True, full=full,
                           progress=lambda st: bar.update(1, st))
    rows = [_status_row(cli, st) for st in results]
    human = table(["CONTACT", "NEW", "REFUSED", "RESULT"], rows) if rows else ["no contacts"]
    cli.emit(StatusList().dump({"statuses": [st.to_dict() for st in results]}), human)
    if any(st.last_error and not st.skipped for st in results):
        raise click.exceptions.Exit(EXIT_PEER)


@main.command()
@click.option("--dry-run", is_flag=True, help="Only list what would be deleted.")
@pass_cli
def gc(cli: Cli, dry_run: bool) -> None:
    """Delete other people's public keys unused for gc_unused_days days.

    Never own identities, contacts, group members or the blocked.
    """
    dd = cli.datadir()
    removed = collect(dd, dry_run=dry_run)
    days = dd.settings["gc_unused_days"]
    verb = "would delete" if dry_run else "deleted"
    reasons = explain(dd, removed) if dry_run else {}
    human = [f"{verb} {fp}.pub" + (f": {reasons[fp]}" if fp in reasons else "")
             for fp in removed] + [f"{verb} {len(removed)} keys unused for {days} days"]
    cli.emit({"dry_run": dry_run, "fingerprints": removed} | (
        {"reasons": reasons} if dry_run else {}), human)


@main.command("lying-peers")
@pass_cli
def lying_peers(cli: Cli) -> None:
    """Nodes that served a wrong key inside an authenticated exchange (not synced again)."""
    peers = LyingPeers(cli.datadir()).list()
    rows = [[p["address"], when(p.get("when")), p.get("why", "")] for p in peers]
    human = table(["ADDRESS", "SINCE", "WHY"], rows) if rows else ["no lying peers"]
    cli.emit(LyingList().dump({"lying_peers": peers}), human)
