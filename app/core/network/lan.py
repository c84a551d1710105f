"""LAN discovery with multicast DNS (docs/protocol.md, "LAN discovery"; docs/threats.md).

Each node announces one ``_diwan._tcp`` service on its local networks: a
random instance name drawn at each start, its LAN addresses and peer port, and
in the TXT record only *blinded tags*, one per own identity, padded with
random tags to a fixed count (``lan_tag_slots``; a multiple of it for more
identities) and shuffled::

    tag(fp, day) = BLAKE2b-64(key = fingerprint bytes, "diwan/v1/lan-tag" NUL || day)
    TXT          = {"v": "1", "t0": hex tag, "t1": hex tag, ...}

Only someone who already knows a fingerprint can compute its tag, and the tag
changes every UTC day. A node that cannot reach a contact at its stored
addresses browses for the contact's tag (:func:`find`) and tries the address
found; the sync keeps it only after the authenticated exchange succeeds
there. The announcer runs in the scheduler process (:class:`Announcer`,
zeroconf's own threads; a scheduler job refreshes it for a new day or new
addresses). ``lan_discovery = false`` turns off both announcing and looking.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import random
import socket
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from ..base import crypto, names
from ..base.datadir import DataDir
from ..identity.identities import Identities
from .addresses import WILDCARDS, is_lan, machine_addresses, url

log = logging.getLogger("diwan.lan")

SERVICE_TYPE = "_diwan._tcp.local."
TXT_VERSION = "1"


def utc_day(now: float, shift: int = 0) -> str:
    """The UTC day of unix time ``now`` (plus ``shift`` days) as ``YYYY-MM-DD``."""
    return (datetime.fromtimestamp(now, UTC) + timedelta(days=shift)).strftime("%Y-%m-%d")


def tag(fp: str, day: str) -> str:
    """The blinded tag (16 hex digits) of fingerprint ``fp`` on UTC ``day``."""
    return crypto.lan_tag(bytes.fromhex(names.fingerprint(fp)), day).hex()


def padded_tags(fps: Iterable[str], day: str, slots: int) -> list[str]:
    """The tags of ``fps`` on ``day`` plus random ones, ``slots`` in all (a multiple of it
    for more identities), in random order."""
    real = [tag(fp, day) for fp in sorted(set(fps))]
    total = slots * max(1, math.ceil(len(real) / slots))
    out = real + [crypto.random_bytes(crypto.LAN_TAG_BYTES).hex()
                  for _ in range(total - len(real))]
    random.SystemRandom().shuffle(out)
    return out


def txt_record(tags: Sequence[str]) -> dict[str, str]:
    """The TXT properties announcing ``tags``."""
    return {"v": TXT_VERSION, **{f"t{i}": t for i, t in enumerate(tags)}}


def tags_in(properties: dict[Any, Any]) -> set[str]:
    """The well-formed tags of a TXT record (bytes or str keys and values)."""
    out = set()
    for key, value in properties.items():
        k = key.decode("ascii", "replace") if isinstance(key, bytes) else str(key)
        v = value.decode("ascii", "replace") if isinstance(value, bytes) else str(value or "")
        if k.startswith("t") and k[1:].isdigit() and len(v) == 2 * crypto.LAN_TAG_BYTES \
                and all(c in "0123456789abcdef" for c in v):
            out.add(v)
    return out


def lan_hosts(settings: dict[str, Any]) -> list[str]:
    """The LAN addresses the peer port listens on (what may be announced)."""
    host = str(settings["peer_host"])
    if host in WILDCARDS:
        hosts = machine_addresses(4 if host == "0.0.0.0" else None)
    else:
        hosts = [host]
    return [h for h in hosts if is_lan(h)]


def _zeroconf(hosts: Sequence[str]) -> Any:
    from zeroconf import IPVersion, Zeroconf

    v6 = any(":" in h for h in hosts)
    v4 = any(":" not in h for h in hosts)
    version = IPVersion.All if v4 and v6 else IPVersion.V6Only if v6 else IPVersion.V4Only
    return Zeroconf(interfaces=list(hosts), ip_version=version)


class Announcer:
    """The node's one ``_diwan._tcp`` service; :meth:`refresh` (re)announces it, :meth:`stop`
    withdraws it. Never raises: a LAN that cannot be used is logged and left alone."""

    def __init__(self, dd: DataDir) -> None:
        self.dd = dd
        self.instance = crypto.random_bytes(8).hex()  # new at each start: nothing to follow
        self.zc: Any = None
        self.info: Any = None
        self.shown: tuple[tuple[str, ...], tuple[str, ...], str] | None = None

    def refresh(self, now: float | None = None) -> None:
        """Announce for today's tags and the current LAN addresses (only if they changed)."""
        s = self.dd.settings
        hosts = tuple(lan_hosts(s))
        own = tuple(sorted(Identities(self.dd).own_fingerprints()))
        day = utc_day(time.time() if now is None else now)
        if (hosts, own, day) == self.shown:
            return
        try:
            self._announce(hosts, own, day)
            self.shown = (hosts, own, day)
        except Exception as exc:  # zeroconf raises many kinds; the node runs on without it
            log.warning("LAN announcement failed: %s", exc)
            self.stop()

    def _announce(self, hosts: Sequence[str], own: Sequence[str], day: str) -> None:
        from zeroconf import ServiceInfo

        self.stop()
        if not hosts:
            log.info("LAN announcement: no LAN address to announce")
            return
        s = self.dd.settings
        name = f"{self.instance}.{SERVICE_TYPE}"
        self.info = ServiceInfo(
            SERVICE_TYPE, name, port=int(s["peer_port"]), server=f"{self.instance}.local.",
            addresses=[socket.inet_pton(socket.AF_INET6 if ":" in h else socket.AF_INET, h)
                       for h in hosts],
            properties=txt_record(padded_tags(own, day, s["lan_tag_slots"])))
        self.zc = _zeroconf(hosts)
        self.zc.register_service(self.info)
        log.info("LAN announcement: %s on %s", name, ", ".join(hosts))

    def stop(self) -> None:
        """Withdraw the service (a goodbye packet) and close the sockets."""
        zc, self.zc, self.shown = self.zc, None, None
        if zc is None:
            return
        try:
            zc.unregister_all_services()
        finally:
            zc.close()


@dataclass(frozen=True)
class Seen:
    """One announcement heard: its instance name, addresses (URLs) and tags."""

    name: str
    urls: tuple[str, ...]
    tags: frozenset[str]


def browse(hosts: Sequence[str], wait: float) -> list[Seen]:
    """Every ``_diwan._tcp`` service heard within ``wait`` seconds on the networks of
    ``hosts`` (this machine's LAN addresses). Never raises: [] if the LAN cannot be used."""
    if not hosts:
        return []
    from zeroconf import ServiceBrowser, ServiceInfo, ServiceStateChange

    names_seen: list[str] = []

    def changed(zeroconf: Any, service_type: str, name: str, state_change: Any) -> None:
        if state_change is not ServiceStateChange.Removed and name not in names_seen:
            names_seen.append(name)

    try:
        zc = _zeroconf(hosts)
    except Exception as exc:
        log.info("LAN browse failed: %s", exc)
        return []
    try:
        browser = ServiceBrowser(zc, SERVICE_TYPE, handlers=[changed])
        time.sleep(wait)
        browser.cancel()
        out = []
        for name in list(names_seen):
            info = ServiceInfo(SERVICE_TYPE, name)
            if not info.request(zc, 1000) or not info.port:
                continue
            urls = tuple(url(str(ipaddress.ip_address(a)), info.port)
                         for a in info.parsed_addresses())
            out.append(Seen(name, urls, frozenset(tags_in(info.properties or {}))))
        return out
    except Exception as exc:
        log.info("LAN browse failed: %s", exc)
        return []
    finally:
        zc.close()


_cache: tuple[float, list[Seen]] | None = None
_cache_lock = threading.Lock()


def find(dd: DataDir, fp: str, now: float | None = None) -> list[str]:
    """The LAN addresses (URLs) announcing ``fp``'s tag for yesterday, today or tomorrow
    (clocks differ around midnight); [] when ``lan_discovery`` is off, when the peer port
    listens on no LAN address (a node bound to loopback neither announces nor looks), or
    when nothing answers.

    One browse of ``lan_browse_time`` seconds serves every caller in this process for
    ``lan_browse_cache`` seconds (a round with many unreachable contacts browses once).
    An address found here is only a guess until the authenticated exchange succeeds."""
    global _cache
    s = dd.settings
    if not s["lan_discovery"]:
        return []
    t = time.time() if now is None else now
    wanted = {tag(fp, utc_day(t, shift)) for shift in (-1, 0, 1)}
    with _cache_lock:
        if _cache is None or time.monotonic() - _cache[0] > s["lan_browse_cache"]:
            _cache = (time.monotonic(), browse(lan_hosts(s), s["lan_browse_time"]))
        heard = _cache[1]
    return [u for seen in heard if seen.tags & wanted for u in seen.urls]
