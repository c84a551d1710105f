"""Drafts of the web pages' compose forms, kept on the node until they are sent.

One draft per place a post is written (``compose``, ``reply-<sha1>`` for a
thread's reply box, ``chat-<conversation id>`` for a chat), as one JSON file
``state/web/drafts/<place>.json``: written atomically (a half-written draft is
never read), 0600 from creation in a 0700 directory (a draft may be a private
message), removed when the post is sent. Media wait in the draft as base64url;
their metadata is removed when the post is composed, like every image
(:mod:`.imagemeta`). The fields are plain strings; :class:`Drafts` only stores
them, the pages decide what they mean.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from ..base.datadir import DataDir
from ..base.errors import BadInput
from ..base.fsio import write_atomic
from ..base.websessions import web_dir

PLACE_RE = re.compile(r"compose|reply-[0-9a-f]{40}|chat-[0-9a-f]{8,64}")
FIELDS = ("author", "text", "warning", "link", "audience", "group", "to", "reply_to",
          "reshare")


def _check(place: str) -> str:
    if not isinstance(place, str) or not PLACE_RE.fullmatch(place):
        raise BadInput("a draft is named compose, reply-<sha1> or chat-<id>", field="draft")
    return place


def _clean(state: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {k: str(state.get(k) or "") for k in FIELDS}
    media = state.get("media") or []
    out["media"] = [{"data": str(m["data"]), "alt": str(m.get("alt") or ""),
                     "kind": str(m.get("kind") or ""), "size": int(m.get("size") or 0)}
                    for m in media if isinstance(m, dict) and isinstance(m.get("data"), str)]
    return out


class Drafts:
    """The drafts of one data directory (``state/web/drafts``)."""

    def __init__(self, dd: DataDir) -> None:
        self.dd = dd

    def _path(self, place: str) -> Path:
        return web_dir(self.dd, "drafts") / f"{_check(place)}.json"

    def get(self, place: str) -> dict[str, Any] | None:
        """The draft at ``place`` (the :data:`FIELDS` as strings and ``media``, a list of
        ``{"data": base64url, "alt", "kind", "size"}``), or None if there is none or it no
        longer reads. Raises :class:`BadInput` for a bad place name."""
        try:
            raw = json.loads(self._path(place).read_bytes())
        except (OSError, ValueError):
            return None
        if not isinstance(raw, dict):
            return None
        try:
            return _clean(raw)
        except (KeyError, TypeError, ValueError):
            return None

    def save(self, place: str, state: dict[str, Any]) -> None:
        """Replace the draft at ``place`` with ``state`` (atomically, 0600). Raises
        :class:`BadInput` for a bad place name or a draft larger than twice
        ``max_post_bytes`` (its media would not fit in a post anyway)."""
        data = json.dumps(_clean(state), ensure_ascii=False).encode()
        if len(data) > 2 * self.dd.settings["max_post_bytes"]:
            raise BadInput("the draft is larger than a post may be (max_post_bytes)",
                           field="media")
        write_atomic(self._path(place), data, mode=0o600)

    def discard(self, place: str) -> None:
        """Remove the draft at ``place`` (sent, or thrown away); nothing if there is none."""
        self._path(place).unlink(missing_ok=True)
