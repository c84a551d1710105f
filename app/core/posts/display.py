"""Display names: what people see instead of a fingerprint.

A key is shown by its petname (:mod:`app.core.identity.petnames`), else the
profile name (``*_PROFILENAME``) of the newest profile this node holds that the
viewers may see, else the short fingerprint, which the CLI accepts back as a
prefix. Names are computed here, on the owner's node, and never sent to peers.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..base.datadir import DataDir
from ..identity.petnames import Petnames, short
from .attributes import type_of
from .timeline import Timeline


class DisplayNames:
    """Names for fingerprints, as ``viewers`` (default: every own identity) see them.

    One instance caches what it looked up: make one per request or command.
    """

    def __init__(self, dd: DataDir, viewers: Iterable[str] | None = None,
                 timeline: Timeline | None = None) -> None:
        self.timeline = timeline or Timeline(dd)
        self.viewers = list(viewers) if viewers is not None \
            else self.timeline.identities.own_fingerprints()
        self.petnames = Petnames(dd).all()
        self._cache: dict[str, str] = {}

    def __call__(self, fp: str) -> str:
        """The display name of ``fp`` (a full fingerprint): petname, profile name or short form."""
        if fp not in self._cache:
            self._cache[fp] = self.petnames.get(fp) or self.profile_name(fp) or short(fp)
        return self._cache[fp]

    def profile_name(self, fp: str) -> str | None:
        """The ``*_PROFILENAME`` of the newest profile by ``fp`` the viewers may see, or None."""
        profile = self.timeline.profile_for(fp, self.viewers)
        if profile is None:
            return None
        for key in sorted(profile["attributes"]):
            value = profile["attributes"][key]
            if type_of(key) == "PROFILENAME" and isinstance(value, str) and value.strip():
                return value.strip()
        return None

    def annotate(self, view: dict[str, Any]) -> dict[str, Any]:
        """Add ``author_name`` and ``recipient_names`` to a post view (and to reshared
        posts inside it), in place; returns the view."""
        view["author_name"] = self(view["author"])
        view["recipient_names"] = [self(fp) for fp in view.get("recipients", [])]
        for item in view.get("attributes", {}).values():
            inner = item.get("post") if isinstance(item, dict) else None
            if isinstance(inner, dict):
                self.annotate(inner)
        return view
