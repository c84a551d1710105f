"""``diwan contact``, ``diwan sync``, ``diwan gc`` and ``diwan lying-peers``: the node's network."""

from __future__ import annotations

import sys
from typing import Any

import click

from ..core.base.errors import BadInput
from ..core.identity.identities import Identities
from ..core.identity.petnames import Petnames, short
from ..core.network import invitestate
from ..core.network.contacts import Contact, Contacts
from ..core.network.invites import looks_like_invite
from ..core.network.keylookup import LyingPeers, add_contact
from ..core.network.ownsync import sync_own_nodes
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
             cli.names()(c["identity"]), c["sync"]["state"], when(c["sync"]["last_success"]),
             f"{c['invite']['state']}: {c['invite']['detail']}" if c["invite"] else "-"]
            for c in contacts]
    human = table(["NAME", "CONTACT", "ADDRESS", "AS", "SYNC", "LAST SUCCESS", "INVITE"], rows) \
        if rows \
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
        f"posts         {st['posts_received']} received, {st['rejected']} refused",
        *([f"invite        {data['invite']['state']}: {data['invite']['detail']}"]
          if data["invite"] else [])])


@contact.command()
@click.argument("target", metavar="FP_OR_INVITE")
@click.argument("address", required=False)
@click.option("--identity", "-i", type=FP, metavar="OWN_FP",
              help="The own identity that follows FP (needed if the node has several).")
@click.option("--replace", is_flag=True,
              help="Replace the address (or following identity) of an existing contact.")
@pass_cli
def add(cli: Cli, target: str, address: str | None, identity: str | None,
        replace: bool) -> None:
    """Follow FP, whose node is at ADDRESS (http://host:port), or the friend whose invite
    string (diwan-invite:...) is given.

    An invite is checked (key, signature, expiry; a changed one is refused, exit 2)
    and its one-time token sent on the next syncs, so the friend's node follows
    back ('diwan contact list' shows how that goes). Otherwise, if FP's key is
    unknown it is fetched from ADDRESS by fingerprint; a wrong answer is an error
    (unauthenticated, so not recorded as a lie; try again). Changing an existing
    contact's address or identity needs --replace.
    """
    dd = cli.datadir()
    following = _following(Identities(dd), identity)
    if looks_like_invite(target):
        if address is not None:
            raise BadInput("an invite holds the addresses; give no ADDRESS", field="address")
        found, created, inv = invitestate.accept(dd, target, following, replace=replace)
        data = {**_contact(cli, found), "created": created, "key_fetched": False}
        token = " (its one-time token is sent on the next sync)" if inv.token else ""
        cli.emit(ContactOut().dump(data), f"{'added' if created else 'updated'} contact "
                 f"{found.fingerprint} at {', '.join(found.addresses)} from the invite{token}")
        return
    if address is None:
        raise BadInput("give FP and ADDRESS, or an invite string", field="address")
    fp = FP.convert(target, None, click.get_current_context())
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
    """Pull new posts from every contact (or FP only) now, back-off or not, and each own
    identity's posts from its other nodes (FP an own identity: only that).

    Exits 6 if any contact or node failed (the table says why).
    """
    dd = cli.datadir()
    own_only = fp is not None and Identities(dd).is_own(fp)
    only = [fp] if fp else None
    total = 0 if own_only else 1 if fp else len(Contacts(dd).list())
    with click.progressbar(length=total, label="syncing", file=sys.stderr,
                           item_show_func=lambda st: _short(st.fingerprint) if st else None
                           ) as bar:
        results = [] if own_only else sync_all(dd, only=only, force=True, full=full,
                                               progress=lambda st: bar.update(1, st))
    own = sync_own_nodes(dd, only=fp) if own_only or fp is None else []
    rows = [_status_row(cli, st) for st in results] + [
        [f"own node {o['address']}", str(o["posts_last_run"]), "-",
         f"failed: {o['last_error']}" if o["last_error"] else "ok"] for o in own]
    human = table(["CONTACT", "NEW", "REFUSED", "RESULT"], rows) if rows else ["no contacts"]
    cli.emit(StatusList().dump({"statuses": [st.to_dict() for st in results],
                                "own_nodes": own}), human)
    if any(st.last_error and not st.skipped for st in results) \
            or any(o["last_error"] for o in own):
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
