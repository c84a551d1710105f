"""``diwan timeline|show|thread|conversations|conversation|profile show|birthdays|contacts-book``.

Reading posts. ``--json`` prints the admin API's shapes (``GET /posts``,
``/posts/<sha>``, ``/posts/<sha>/replies``, ``/conversations``, ``/profiles/<fp>``,
``/birthdays``, ``/contacts-book``); the human form shows each post as a
header line (time, short author, kind, SHA-1) and its content indented under
it. Post content comes from other people: control and bidirectional-override
characters are shown escaped, never sent to the terminal.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import click

from ..core.base import strictjson
from ..core.base.errors import Gone, NotFound
from ..core.identity.petnames import SHORT
from ..core.posts import records
from ..core.posts.attributes import describe
from ..core.posts.authoring import find_post
from ..core.posts.codec import KINDS, decode_post
from ..core.posts.codec import stored_view as view
from ..core.posts.display import DisplayNames
from ..core.posts.reconcile import open_index
from ..core.posts.timeline import Timeline, viewer_today
from ..core.posts.versions import annotate
from ..schemas import posts as s
from .base import FP, Cli, clean, main, pass_cli, table, when
from .posts import fp_arg, fp_args, profile, sha_arg

INDENT = "    "
_SHOWN_APART = frozenset({"TEXT", "CREATED_TIME"})  # the body, and the time in the header


def short(fp: str | None) -> str:
    """The short fingerprint output shows where no name is known (accepted back as a prefix)."""
    return fp[:SHORT] if fp else "-"


def _name(v: dict[str, Any], fp_key: str = "author") -> str:
    return str(v.get(f"{fp_key}_name") or short(v[fp_key]))


def _value(value: Any) -> str:
    return clean(value if isinstance(value, str) else strictjson.dumps(value))


# --- rendering a decoded post (the API's view) ---------------------------------------------

def _labelled(key: str, text: str) -> list[str]:
    first, *rest = text.split("\n")
    return [f"{key}: {first}"] + [INDENT + line for line in rest]


def _attribute_lines(key: str, item: dict[str, Any]) -> list[str]:
    if "media" in item:
        return [f"[{key}: {item['media']} {item['format'] or '?'}, {item['size']} bytes]"]
    if item["type"] == "POST":
        inner = item.get("post")
        if inner is None:
            return [f"[{key}: a reshared post that cannot be decoded]"]
        return [f"{key}: reshared from {_name(inner)} {inner['sha1']}"] + [
            INDENT + line for line in post_lines(inner, with_header=False)]
    if item["type"] in ("FINGERPRINT", "POSTSHA"):
        return []  # shown as to: / re: from the view's recipients and replies_to
    if item["type"] == "TIME" and isinstance(item["value"], int):
        return [f"{key}: {when(item['value'])} ({item['value']})"]
    return _labelled(key, _value(item["value"]))


def content_lines(attributes: dict[str, dict[str, Any]]) -> list[str]:
    """TEXT first, then every other attribute but CREATED_TIME, media as a summary."""
    lines = []
    body = attributes.get("TEXT")
    if body is not None and isinstance(body.get("value"), str):
        lines += clean(body["value"]).split("\n")
    for key, item in attributes.items():
        if key not in _SHOWN_APART:
            lines += _attribute_lines(key, item)
    return lines


def kind_label(v: dict[str, Any]) -> str:
    """``comment (reaction)``, ``post (reshare)``, ``message``..."""
    flags = [f for f, on in (("reaction", v["is_reaction"]), ("reshare", v["reshared"])) if on]
    return str(v["kind"]) + (f" ({', '.join(flags)})" if flags else "")


def header(v: dict[str, Any]) -> str:
    return f"{when(v['created'])}  {_name(v)}  {kind_label(v)}  {v['sha1']}"


def post_lines(v: dict[str, Any], *, with_header: bool = True) -> list[str]:
    """A post as a header line and its content indented (to: and re: first)."""
    lines = []
    if v["recipients"]:
        shown = v.get("recipient_names") or [short(fp) for fp in v["recipients"]]
        lines.append("to: " + ", ".join(shown))
    lines += [f"re: {sha}" for sha in v["replies_to"]]
    lines += content_lines(v["attributes"])
    return [header(v)] + [INDENT + line for line in lines] if with_header else lines


def page_lines(posts: list[dict[str, Any]], next_cursor: str | None, empty: str) -> list[str]:
    lines = [line for v in posts for line in post_lines(v)] or [empty]
    if next_cursor:
        lines.append(f"next cursor: {next_cursor}")
    return lines


def _read_views(tl: Timeline, entries: Iterable[Any],
                names: DisplayNames | None = None) -> list[dict[str, Any]]:
    """The API view of each entry whose file is still there (with display names if given)."""
    views = [view(p) for p in (tl.read(e) for e in entries) if p is not None]
    return [annotate(tl.index, names.annotate(v) if names is not None else v) for v in views]


def _snippet(v: dict[str, Any] | None, width: int = 50) -> str:
    body = (v or {}).get("attributes", {}).get("TEXT", {}).get("value")
    if not isinstance(body, str):
        return "-"
    first = clean(body.split("\n", 1)[0])
    return first if len(first) <= width else first[:width - 1] + "…"


# --- commands ----------------------------------------------------------------------------

@main.command()
@click.option("--author", multiple=True, type=FP, metavar="FP",
              help="Only posts by FP (repeatable).")
@click.option("--group", metavar="NAME", help="Only posts by members of group NAME.")
@click.option("--kind", multiple=True, type=click.Choice(KINDS),
              help="Only posts of this kind (repeatable).")
@click.option("--limit", type=click.IntRange(min=1), help="Posts per page (default page_size).")
@click.option("--cursor", help="Continue after the page that printed this cursor.")
@pass_cli
def timeline(cli: Cli, author: tuple[str, ...], group: str | None, kind: tuple[str, ...],
             limit: int | None, cursor: str | None) -> None:
    """The timeline, newest first, across every feed that is not blocked."""
    tl = Timeline(cli.datadir())
    authors = fp_args(author, "--author") or None
    page = tl.page(authors=authors, group=group, kinds=kind or None, limit=limit,
                   cursor=cursor)
    items = _read_views(tl, page.items, cli.names())
    out = {"posts": items, "next_cursor": page.next_cursor}
    cli.emit(s.PostPage().dump(out), page_lines(items, page.next_cursor, "no posts"))


def _detail_lines(v: dict[str, Any]) -> list[str]:
    to = v["recipients"] or ["public"]
    lines = [f"sha1:     {v['sha1']}", f"author:   {_name(v)} ({v['author']})",
             f"created:  {when(v['created'])} ({v['created']})",
             f"kind:     {kind_label(v)}",
             f"to:       {to[0]}", *[f"          {fp}" for fp in to[1:]],
             *[f"re:       {sha}" for sha in v["replies_to"]],
             f"size:     {v['size']} bytes", "verified: yes",
             *([f"edited:   {len(v['versions'])} versions, newest {v['latest']}"]
               if v.get("edited") else []), ""]
    return lines + content_lines(v["attributes"])


@main.command()
@click.argument("sha")
@click.option("--raw", is_flag=True, help="Write the exact post file to stdout.")
@pass_cli
def show(cli: Cli, sha: str, raw: bool) -> None:
    """One post, decoded (media as kind and size), or its exact bytes with --raw."""
    dd = cli.datadir()
    index = open_index(dd)
    if index.get(sha_arg(sha)) is None and records.deleted_by_author(index, sha):
        raise Gone(f"post {sha} was deleted by its author", field="sha")
    data = find_post(dd, sha)
    if raw:
        click.echo(data, nl=False)
        return
    v = annotate(index, cli.names().annotate(view(decode_post(
        data, max_bytes=dd.settings["max_post_bytes"]))))
    cli.emit(s.PostOut().dump(v), _detail_lines(v))


@main.command()
@click.argument("sha")
@pass_cli
def thread(cli: Cli, sha: str) -> None:
    """Post SHA and the replies under it, nested by indentation (oldest first)."""
    tl = Timeline(cli.datadir())
    found = tl.replies(sha_arg(sha))
    items: list[dict[str, Any]] = []
    for node in found.walk():
        post = tl.read(node.entry)
        if post is not None:
            items.append({"parent": node.parent, "depth": node.depth,
                          "post": annotate(tl.index, cli.names().annotate(view(post)))})
    root = _read_views(tl, [found.root_entry], cli.names()) if found.root_entry else []
    if not root and not items:
        raise NotFound(f"no post {sha} and no replies to it on this node", field="sha")
    gone = "deleted by its author" if found.deleted else "not on this node"
    human = post_lines(root[0]) if root else [f"{sha} ({gone})"]
    for item in items:
        human += [INDENT * item["depth"] + line for line in post_lines(item["post"])]
    cli.emit({"root": found.root, "versions": found.versions, "root_deleted": found.deleted,
              "replies": items}, human)


@main.command()
@pass_cli
def conversations(cli: Cli) -> None:
    """Private and group conversations of this node's identities, most recent first."""
    tl = Timeline(cli.datadir())
    convs: list[dict[str, Any]] = [{"id": c.id, "participants": c.participants,
              "last": next(iter(_read_views(tl, [c.last], cli.names())), None),
              "participant_names": [cli.names()(fp) for fp in c.participants]}
             for c in tl.conversations()]
    rows = [[c["id"], when(c["last"]["created"]) if c["last"] else "-",
             ", ".join(c["participant_names"]), _snippet(c["last"])]
            for c in convs]
    human = table(["ID", "LAST", "PARTICIPANTS", "TEXT"], rows) if rows else "no conversations"
    cli.emit({"conversations": convs}, human)


@main.command()
@click.argument("conversation_id", metavar="ID")
@click.option("--limit", type=click.IntRange(min=1), help="Messages per page.")
@click.option("--cursor", help="Continue after the page that printed this cursor.")
@pass_cli
def conversation(cli: Cli, conversation_id: str, limit: int | None,
                 cursor: str | None) -> None:
    """The messages of conversation ID (from 'diwan conversations'), newest first."""
    tl = Timeline(cli.datadir())
    page = tl.conversation(conversation_id, limit=limit, cursor=cursor)
    messages = _read_views(tl, page.items, cli.names())
    human = [f"conversation {page.id} between "
             + ", ".join(cli.names()(fp) for fp in page.participants)]
    human += page_lines(messages, page.next_cursor, "no messages")
    cli.emit({"id": page.id, "participants": page.participants,
              "participant_names": [cli.names()(fp) for fp in page.participants],
              "messages": messages, "next_cursor": page.next_cursor}, human)


@profile.command("show")
@click.argument("fp", type=FP)
@click.option("--viewer", multiple=True, type=FP, metavar="FP",
              help="Show the profile FP shows this identity (repeatable; default: this "
                   "node's own identities). Without any, only public profiles count.")
@pass_cli
def profile_show(cli: Cli, fp: str, viewer: tuple[str, ...]) -> None:
    """The current profile of FP: the newest profile post visible to the viewers."""
    tl = Timeline(cli.datadir())
    viewers = fp_args(viewer, "--viewer") or tl.identities.own_fingerprints()
    found = tl.profile_for(fp_arg(fp, "FP"), viewers)
    if found is None:
        raise NotFound(f"no profile of {fp} here", field="fp")
    found["attributes"] = {k: describe(k, v) for k, v in sorted(found["attributes"].items())}
    human = [f"profile of {found['fingerprint']}",
             f"post:     {found['sha1']} ({'public' if found['public'] else 'addressed'})",
             f"created:  {when(found['created'])}", ""]
    human += content_lines(found["attributes"])
    cli.emit(found, human)


@main.command()
@pass_cli
@click.option("--today", help="Count from this date (YYYY-MM-DD) instead of today.")
@click.option("--tz", help="Today in this IANA time zone (default: this terminal's local zone).")
def birthdays(cli: Cli, today: str | None, tz: str | None) -> None:
    """Known identities with a birthdate (from profiles), the next birthday first.

    Counted from the local date of this command (TZ of the terminal), not the
    node's.
    """
    day = viewer_today(today, tz)
    found = Timeline(cli.datadir()).birthdays(today=day)
    rows = [[b["next"], str(b["days_until"]), clean(b["name"] or "-"), b["birthdate"],
             short(b["fingerprint"])] for b in found]
    human = (table(["NEXT", "DAYS", "NAME", "BORN", "FINGERPRINT"], rows) if rows
             else "no birthdays known")
    cli.emit({"today": day.isoformat(), "birthdays": found}, human)


@main.command("contacts-book")
@pass_cli
def contacts_book(cli: Cli) -> None:
    """Names, phones, e-mails, workplaces and birthdates from current profiles."""
    found = Timeline(cli.datadir()).contacts_book()

    def joined(values: list[str]) -> str:
        return clean(", ".join(values)) or "-"

    rows = [[clean(c["name"] or "-"), joined(c["phones"]), joined(c["emails"]),
             joined(c["workplaces"]), c["birthdate"] or "-", short(c["fingerprint"])]
            for c in found]
    human = (table(["NAME", "PHONES", "EMAILS", "WORKPLACES", "BORN", "FINGERPRINT"], rows)
             if rows else "no profiles known")
    cli.emit({"contacts": found}, human)
