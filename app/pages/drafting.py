"""The compose form as data: the form's fields become a draft (kept in
:class:`app.core.posts.drafts.Drafts` until sent), and a draft becomes a post
(:class:`app.core.posts.authoring.Draft`) and an audience preview.

Attributes (``docs/protocol.md``, Image metadata, alt text, content warnings and
links): the text is ``TEXT``, the content warning ``CONTENTWARNING_TEXT``, the
link ``LINK_URL``, media ``MEDIA_<TYPE>``, ``MEDIA2_<TYPE>``, ... each with its
alt text as ``MEDIA_ALT_TEXT``, ``MEDIA2_ALT_TEXT``, ...
"""

from __future__ import annotations

import re
from typing import Any

from flask import request

from ..core.base.datadir import DataDir
from ..core.base.encoding import b64d, b64e
from ..core.base.errors import BadInput
from ..core.identity.identities import Identities
from ..core.identity.petnames import resolve
from ..core.posts import media as media_kinds
from ..core.posts.authoring import Draft, find_post
from ..core.posts.codec import decode_post
from ..core.posts.display import DisplayNames
from .auth import own_fingerprints

SPLIT_RE = re.compile(r"[\s,]+")
SLOTS = 4  # new files per form (each with its own alt text)
MAX_FILES = 8  # files in one post, kept ones included
AUDIENCES = ("everyone", "group", "people")


def media_name(i: int) -> str:
    """The attribute name of the ``i``-th (0-based) medium: MEDIA, MEDIA2, MEDIA3, ..."""
    return "MEDIA" if i == 0 else f"MEDIA{i + 1}"


def _uploads(dd: DataDir) -> list[dict[str, Any]]:
    limit = dd.settings["max_post_bytes"]
    found = []
    for i in range(1, SLOTS + 1):
        storage = request.files.get(f"media{i}")
        if storage is None or not storage.filename:
            continue
        data = storage.read(limit + 1)
        if len(data) > limit:
            raise BadInput("a file is larger than max_post_bytes", field=f"media{i}")
        if data:
            found.append({"data": b64e(data), "alt": request.form.get(f"alt{i}", "").strip(),
                          "kind": media_kinds.kind_of(data), "size": len(data)})
    return found


def _kept(old: dict[str, Any] | None) -> list[dict[str, Any]]:
    kept = []
    for i, item in enumerate((old or {}).get("media", [])):
        if request.form.get(f"keep{i}"):
            kept.append({**item, "alt": request.form.get(f"kept_alt{i}", "").strip()})
    return kept


def state_from_form(dd: DataDir, old: dict[str, Any] | None) -> dict[str, Any]:
    """The draft the submitted form describes: its fields, the media kept from ``old`` (the
    stored draft) and the new uploads. Raises :class:`BadInput` for an unknown audience,
    a file over ``max_post_bytes`` or more than :data:`MAX_FILES` files."""
    form = request.form
    audience = form.get("audience") or ("people" if form.get("to", "").strip() else "everyone")
    if audience not in AUDIENCES:
        raise BadInput("audience is everyone, group or people", field="audience")
    state: dict[str, Any] = {k: form.get(k, "").strip() for k in
                             ("author", "warning", "link", "group", "to", "reply_to",
                              "reshare")}
    state.update(text=form.get("text", ""), audience=audience,
                 media=_kept(old) + _uploads(dd))
    if len(state["media"]) > MAX_FILES:
        raise BadInput(f"at most {MAX_FILES} files per post", field="media")
    return state


def recipients(dd: DataDir, state: dict[str, Any]) -> list[str]:
    """The fingerprints the draft is addressed to (empty: public). A reply's audience is
    set by the reply rule when it is composed, not here. Raises :class:`BadInput` for an
    unknown group or name, or a group with no one else in it."""
    if state.get("reply_to"):
        return []
    if state["audience"] == "group":
        ids = Identities(dd)
        own = set(own_fingerprints())
        members = [fp for fp in ids.members(state["group"]) if fp not in own]
        if not members:
            raise BadInput(f"the group {state['group']!r} has no one else in it", field="group")
        return members
    if state["audience"] == "people":
        found = [resolve(dd, part, field="to") for part in SPLIT_RE.split(state["to"]) if part]
        if not found:
            raise BadInput("name at least one person, or choose everyone", field="to")
        return found
    return []


def to_post(dd: DataDir, state: dict[str, Any]) -> Draft:
    """The :class:`Draft` of a stored draft state: text, warning, link, media with alt text,
    the audience's recipients, reply and reshare."""
    attributes: dict[str, str] = {}
    if state["warning"]:
        attributes["CONTENTWARNING_TEXT"] = state["warning"]
    if state["link"]:
        attributes["LINK_URL"] = state["link"]
    media = []
    for i, item in enumerate(state["media"]):
        media.append((media_name(i), b64d(item["data"], what="media")))
        if item["alt"]:
            attributes[f"{media_name(i)}_ALT_TEXT"] = item["alt"]
    return Draft(attributes=attributes, text=state["text"] or None,
                 reply_to=state["reply_to"] or None, to=recipients(dd, state),
                 reshare=state["reshare"] or None, media=media)


def audience_preview(dd: DataDir, state: dict[str, Any], names: DisplayNames) -> str:
    """Who will receive the draft, in words; a problem with the audience is said too."""
    if state.get("reply_to"):
        return reply_audience(dd, state["reply_to"], names)
    try:
        fps = recipients(dd, state)
    except BadInput as exc:
        return f"nobody yet: {exc.message}"
    if not fps:
        return "everyone: a public post, for every node that follows you"
    what = "a group message" if len(fps) > 1 else "a private message"
    return f"only {', '.join(sorted(names(fp) for fp in fps))} ({what})"


def reply_audience(dd: DataDir, sha1: str, names: DisplayNames) -> str:
    """Who a reply to ``sha1`` reaches, by the reply rule (docs/protocol.md): the
    participants of a non-public post; the author alone for someone else's public post;
    everyone for one's own."""
    parent = decode_post(find_post(dd, sha1), max_bytes=dd.settings["max_post_bytes"])
    own = set(own_fingerprints())
    if parent.recipients:
        return "its participants only: " + ", ".join(
            names(fp) for fp in sorted({parent.author} | set(parent.recipients)) if fp not in own)
    if parent.author in own:
        return "everyone (a reply to your own public post is public)"
    return f"{names(parent.author)} only (a reply to someone else's post is private to them)"
