"""Router port mapping (UPnP-IGD, opt-in ``port_mapping``): the peer port seen from outside.

With ``port_mapping = true`` the scheduler process (:class:`PortMapper`)
finds the home router's Internet Gateway Device with miniupnpc (SSDP and SOAP
are the library's; nothing hand-written), asks it to forward the peer port
(same number outside, TCP, lease ``port_mapping_lease`` seconds), renews the
lease at half of it, removes the mapping when the scheduler stops, and writes
the public address to ``state/portmap.json``::

    {"url": "http://198.51.100.7:8889", "expires": 1700003600.0}

:func:`.reach.own_reach` then tells contacts that address (first after
``public_url``). NAT-PMP and PCP are not spoken: no maintained Python library
implements them (docs/architecture.md, "Port mapping").
"""

from __future__ import annotations

import logging
import time
from typing import Any

from ..base.datadir import DataDir
from ..base.statefile import StateFile
from .addresses import url
from .reach import PORTMAP_STATE

log = logging.getLogger("diwan.portmap")

DESCRIPTION = "diwan peer port"
DISCOVER_MS = 2000


class PortMapper:
    """One mapping of the peer port on the router; :meth:`refresh` makes or renews it,
    :meth:`stop` removes it. Never raises: a router that refuses is logged and retried
    at the next refresh."""

    def __init__(self, dd: DataDir) -> None:
        self.dd = dd
        self.upnp: Any = None
        self.renew_at = 0.0
        self.public: str | None = None

    def refresh(self, now: float | None = None) -> str | None:
        """Make or renew the mapping when due; return the public URL (None if none)."""
        t = time.time() if now is None else now
        if t < self.renew_at:
            return self.public
        try:
            self.public = self._map(t)
        except Exception as exc:  # miniupnpc raises bare Exception for every failure
            log.warning("port mapping failed: %s", exc)
            self.upnp, self.public, self.renew_at = None, None, t + 60
            StateFile(self.dd, PORTMAP_STATE).path.unlink(missing_ok=True)
        return self.public

    def _map(self, now: float) -> str:
        import miniupnpc

        s = self.dd.settings
        port, lease = int(s["peer_port"]), int(s["port_mapping_lease"])
        if self.upnp is None:
            upnp = miniupnpc.UPnP()
            upnp.discoverdelay = DISCOVER_MS
            if not upnp.discover():
                raise RuntimeError("no UPnP router answered on this network")
            upnp.selectigd()
            self.upnp = upnp
        upnp = self.upnp
        if not upnp.addportmapping(port, "TCP", upnp.lanaddr, port, DESCRIPTION, "", lease):
            raise RuntimeError(f"the router refused to map port {port}")
        public = url(str(upnp.externalipaddress()), port)
        with StateFile(self.dd, PORTMAP_STATE).update() as data:
            data.clear()
            data.update(url=public, expires=now + lease)
        self.renew_at = now + lease / 2
        log.info("port mapping: %s -> %s:%d (lease %d s)", public, upnp.lanaddr, port, lease)
        return public

    def stop(self) -> None:
        """Remove the mapping from the router and forget the public address."""
        upnp, self.upnp, self.public, self.renew_at = self.upnp, None, None, 0.0
        StateFile(self.dd, PORTMAP_STATE).path.unlink(missing_ok=True)
        if upnp is None:
            return
        try:
            upnp.deleteportmapping(int(self.dd.settings["peer_port"]), "TCP")
            log.info("port mapping removed")
        except Exception as exc:
            log.warning("port mapping not removed: %s", exc)
