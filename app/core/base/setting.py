"""One setting's description (:class:`Setting`), and the settings of reaching other nodes.

:mod:`.config` holds the table of every setting; the ones here (addresses that
follow a contact, LAN discovery, router port mapping) are appended to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

DAY = 86400


@dataclass(frozen=True)
class Setting:
    """One setting: its name (the TOML key; ``DIWAN_<NAME>`` in the environment), its default
    (whose type, bool, int or str, is the setting's type), a one-line help text and the
    allowed values: integers lie in ``low..high`` (inclusive, in ``unit``); strings are one
    of ``choices`` or, with ``kind="host"``, an IP address or a host name (``"hosts"``:
    several, comma-separated; ``"url"``: empty or an http(s) address).
    """

    name: str
    default: Any
    help: str
    low: int | None = None
    high: int | None = None
    unit: str = ""
    kind: str = ""
    choices: tuple[str, ...] = ()

    def allowed(self) -> str:
        """The allowed values in words, e.g. ``an integer from 2 to 2592000 (seconds)``."""
        if isinstance(self.default, bool):
            return "true or false"
        if isinstance(self.default, int):
            unit = f" ({self.unit})" if self.unit else ""
            return f"an integer from {self.low} to {self.high}{unit}"
        if self.choices:
            return "one of " + ", ".join(repr(c) for c in self.choices)
        if self.kind == "url":
            return "empty or an http(s)://host[:port] address"
        if self.kind == "hosts":
            return "empty or host names separated by commas"
        return "an IP address or a host name"


REACH_SETTINGS: tuple[Setting, ...] = (
    Setting("max_learned_addresses", 8,
            "most addresses kept per contact that its node told (or LAN discovery found); "
            "hand-set addresses are never dropped", 1, 64),
    Setting("lan_discovery", True,
            "announce this node on the local network (mDNS, LAN addresses only, blinded "
            "tags) and look there for contacts unreachable at their addresses"),
    Setting("lan_tag_slots", 8, "tags in the LAN announcement (random ones fill the empty "
            "slots, so the count does not tell how many identities the node holds)", 1, 32),
    Setting("lan_browse_time", 3, "seconds a LAN look-up listens for announcements",
            1, 60, "seconds"),
    Setting("lan_browse_cache", 30, "seconds one LAN look-up's findings are reused",
            0, 3600, "seconds"),
    Setting("port_mapping", False,
            "ask the router (UPnP-IGD) to forward the peer port to this node, renew it, "
            "remove it on stop, and tell contacts the public address"),
    Setting("port_mapping_lease", 3600, "seconds a router port mapping is asked for "
            "(renewed at half of it)", 120, 7 * DAY, "seconds"),
)
