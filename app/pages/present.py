"""Post views shaped for the templates: every piece of content becomes plain data.

Nothing here builds HTML: the templates escape every value (Jinja2 autoescape).
A link becomes a link only for ``http``/``https``; media are named by their kind
(image, audio, video, else a download) and served by the admin media route, which
sends ``nosniff`` and ``sandbox``.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from flask import url_for

from ..core.posts.codec import Post, stored_view
from ..core.posts.display import DisplayNames
from ..core.posts.timeline import Timeline
from ..core.posts.versions import annotate

HIDDEN_TYPES = frozenset({"TIME", "FINGERPRINT", "POSTSHA"})
PLAYABLE = frozenset({"image", "audio", "video"})


def relative(seconds: int, now: float | None = None) -> str:
    """``5 min ago``-style text for a unix time."""
    delta = int((time.time() if now is None else now) - seconds)
    if delta < 0:
        return "in the future"
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if delta >= size:
            return f"{delta // size} {unit} ago"
    return "just now"


def _part(sha1: str, key: str, item: dict[str, Any], names: DisplayNames) -> dict[str, Any]:
    kind = item.get("type", "")
    if "media" in item:
        media = item["media"] if item["media"] in PLAYABLE else "file"
        src = url_for("posts.media", sha=sha1, attribute=key)
        return {"kind": media, "key": key, "src": src, "size": item.get("size", 0),
                "content_type": item.get("content_type", "")}
    if "post" in item:
        inner = item["post"]
        return {"kind": "post", "key": key,
                "post": card(inner, names, replies=None) if inner else None}
    value = item.get("value")
    if kind == "URL" and isinstance(value, str) and urlsplit(value).scheme in ("http", "https"):
        return {"kind": "link", "key": key, "value": value}
    if not isinstance(value, str):
        value = json.dumps(value, ensure_ascii=False)
    return {"kind": "text" if kind == "TEXT" else "field", "key": key, "value": value}


def card(view: dict[str, Any], names: DisplayNames, replies: int | None = 0) -> dict[str, Any]:
    """A post view (``stored_view``/``decoded_view``) as the ``post.html`` macro shows it."""
    names.annotate(view)
    attrs = view.get("attributes", {})
    parts = [_part(view["sha1"], k, v, names) for k, v in attrs.items()
             if v.get("type") not in HIDDEN_TYPES]
    parts.sort(key=lambda p: p["kind"] != "text")  # the text first, then media and fields
    when = datetime.fromtimestamp(view["created"], UTC)
    return {"sha1": view["sha1"], "author": view["author"], "author_name": view["author_name"],
            "recipients": list(zip(view.get("recipients", []), view["recipient_names"],
                                   strict=True)),
            "public": view.get("public", True), "replies_to": view.get("replies_to", []),
            "created_iso": when.isoformat(), "created_ago": relative(view["created"]),
            "parts": parts, "replies": replies, "edited": bool(view.get("edited")),
            "deleted_by_author": bool(view.get("deleted_by_author"))}


def reply_count(tl: Timeline, sha1: str) -> int:
    """How many replies (at any depth) the post ``sha1`` has on this node."""
    return sum(1 for _ in tl.replies(sha1).walk())


def cards(tl: Timeline, posts: list[Post | None], names: DisplayNames) -> list[dict[str, Any]]:
    """:func:`card` of each post (None, a vanished file, is skipped) with its reply count."""
    return [card(annotate(tl.index, stored_view(p)), names, replies=reply_count(tl, p.sha1))
            for p in posts if p]
