"""Post views shaped for the templates: every piece of content becomes plain data.

Nothing here builds HTML: the templates escape every value (Jinja2 autoescape).
A link becomes a link only for ``http``/``https`` (and is never fetched); an image's
alt text comes from its ``NAME_ALT_TEXT`` attribute; a ``CONTENTWARNING_TEXT`` puts the
text and media behind a ``<details>`` the reader opens; media are named by their kind
(image, audio, video, else a download) and served by the admin media route, which
sends ``nosniff`` and ``sandbox``.
"""

from __future__ import annotations

import ipaddress
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
WARNING_KEY = "CONTENTWARNING_TEXT"
ALT_SUFFIX = "_ALT_TEXT"
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


def _local(url: str) -> bool:
    """True for a link to this machine (loopback, ``localhost``, ``*.localhost``, an
    unspecified address): shown as text, never as a link, because following it from the
    pages would carry the session cookie to whatever listens there (T55)."""
    try:
        host = (urlsplit(url).hostname or "").rstrip(".")
    except ValueError:
        return True
    if host in ("localhost", "") or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return address.is_loopback or address.is_unspecified or bool(mapped and mapped.is_loopback)


def _alt_texts(attrs: dict[str, Any]) -> dict[str, str]:
    """``{media key: alt text}`` from the ``NAME_ALT_TEXT`` attributes (docs/protocol.md,
    Image metadata, alt text, content warnings and links)."""
    alts = {}
    for key, item in attrs.items():
        if "media" in item:
            alt = attrs.get(key.rpartition("_")[0] + ALT_SUFFIX, {}).get("value")
            if isinstance(alt, str) and alt.strip():
                alts[key] = alt
    return alts


def _part(sha1: str, key: str, item: dict[str, Any], names: DisplayNames,
          alts: dict[str, str]) -> dict[str, Any]:
    kind = item.get("type", "")
    if "media" in item:
        media = item["media"] if item["media"] in PLAYABLE else "file"
        src = url_for("posts.media", sha=sha1, attribute=key)
        return {"kind": media, "key": key, "src": src, "size": item.get("size", 0),
                "content_type": item.get("content_type", ""), "alt": alts.get(key, "")}
    if "post" in item:
        inner = item["post"]
        return {"kind": "post", "key": key,
                "post": card(inner, names, replies=None) if inner else None}
    value = item.get("value")
    if kind == "URL" and isinstance(value, str) and urlsplit(value).scheme in ("http", "https"):
        return {"kind": "link" if not _local(value) else "field", "key": key, "value": value}
    if not isinstance(value, str):
        value = json.dumps(value, ensure_ascii=False)
    return {"kind": "text" if kind == "TEXT" else "field", "key": key, "value": value}


def card(view: dict[str, Any], names: DisplayNames, replies: int | None = 0) -> dict[str, Any]:
    """A post view (``stored_view``/``decoded_view``) as the ``post.html`` macro shows it."""
    names.annotate(view)
    attrs = view.get("attributes", {})
    alts = _alt_texts(attrs)
    used = {k.rpartition("_")[0] + ALT_SUFFIX for k in alts} | {WARNING_KEY}
    parts = [_part(view["sha1"], k, v, names, alts) for k, v in attrs.items()
             if v.get("type") not in HIDDEN_TYPES and k not in used]
    warning = attrs.get(WARNING_KEY, {}).get("value")
    parts.sort(key=lambda p: p["kind"] != "text")  # the text first, then media and fields
    when = datetime.fromtimestamp(view["created"], UTC)
    return {"sha1": view["sha1"], "author": view["author"], "author_name": view["author_name"],
            "recipients": list(zip(view.get("recipients", []), view["recipient_names"],
                                   strict=True)),
            "public": view.get("public", True), "replies_to": view.get("replies_to", []),
            "created_iso": when.isoformat(), "created_ago": relative(view["created"]),
            "parts": parts, "replies": replies,
            "warning": warning if isinstance(warning, str) and warning.strip() else None,
            "edited": bool(view.get("edited")),
            "deleted_by_author": bool(view.get("deleted_by_author"))}


def reply_count(tl: Timeline, sha1: str) -> int:
    """How many replies (at any depth) the post ``sha1`` has on this node."""
    return sum(1 for _ in tl.replies(sha1).walk())


def cards(tl: Timeline, posts: list[Post | None], names: DisplayNames) -> list[dict[str, Any]]:
    """:func:`card` of each post (None, a vanished file, is skipped) with its reply count."""
    return [card(annotate(tl.index, stored_view(p)), names, replies=reply_count(tl, p.sha1))
            for p in posts if p]
