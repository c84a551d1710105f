"""Display names for one admin request (petname, profile name or short fingerprint)."""

from __future__ import annotations

from flask import current_app, g

from ..core.posts.display import DisplayNames


def display_names() -> DisplayNames:
    """The request's :class:`DisplayNames` (as the node's own identities see others)."""
    names = g.get("diwan_names")
    if names is None:
        names = g.diwan_names = DisplayNames(current_app.config["DIWAN"])
    return names


def named_view(view: dict) -> dict:  # type: ignore[type-arg]
    """A post view with ``author_name`` and ``recipient_names`` added."""
    return display_names().annotate(view)
