"""The addresses at which friends can reach this node's peer API (README "Reaching friends").

A peer API bound to a wildcard is reachable at every address of the machine
(``::``, bound dual-stack: IPv4 and IPv6; ``0.0.0.0``: IPv4 only); loopback
addresses are useless to a friend and link-local ones need an interface name,
so both are left out. ``public_url``, when set, is listed first: it is what
the owner knows works from outside (a port forward, a name of their own); a
router mapping made by :mod:`.portmap` comes next.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Mapping
from typing import Any

WILDCARDS = ("0.0.0.0", "::", "")


def url(host: str, port: int) -> str:
    """``http://host:port`` (IPv6 hosts in brackets)."""
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def machine_addresses(version: int | None = None) -> list[str]:
    """Every usable IP address of this machine (not loopback, not link-local), IPv4 first;
    only IPv4 (``version`` 4) or IPv6 (6) ones if asked."""
    import psutil  # here, not at import: every process imports this module

    found: set[ipaddress.IPv4Address | ipaddress.IPv6Address] = set()
    for entries in psutil.net_if_addrs().values():
        for entry in entries:
            if entry.family not in (socket.AF_INET, socket.AF_INET6):
                continue
            try:
                ip = ipaddress.ip_address(entry.address.split("%", 1)[0])
            except ValueError:
                continue
            if not (ip.is_loopback or ip.is_link_local or ip.is_unspecified) \
                    and version in (None, ip.version):
                found.add(ip)
    return [str(ip) for ip in sorted(found, key=lambda ip: (ip.version, int(ip)))]


def peer_urls(settings: Mapping[str, Any], mapped: str | None = None) -> list[str]:
    """The peer API URLs a friend can use: ``public_url`` if set, the router ``mapped``
    address if any, then the bound address (or, for a wildcard bind, every usable
    address of the machine: IPv4 only for ``0.0.0.0``, global IPv6 too for ``::``)."""
    host, port = str(settings["peer_host"]), int(settings["peer_port"])
    out = [str(settings["public_url"])] if settings.get("public_url") else []
    if mapped and mapped not in out:
        out.append(mapped)
    hosts = machine_addresses(4 if host == "0.0.0.0" else None) if host in WILDCARDS \
        else [host]
    out += [url(h, port) for h in hosts if url(h, port) not in out]
    return out


def is_lan(address: str) -> bool:
    """True for an IP address of a local network (RFC 1918, IPv6 unique local, CGNAT
    excluded): what LAN discovery may announce. Host names are never LAN addresses."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    shared = ipaddress.ip_network("100.64.0.0/10")
    return ip.is_private and not (ip.is_loopback or ip.is_link_local or ip in shared)


def page_url(settings: Mapping[str, Any]) -> str:
    """The URL of the node's own web pages (the admin port), as a browser on this machine
    opens it: a wildcard admin bind address is shown as 127.0.0.1."""
    host = str(settings["admin_host"])
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    return url(host, int(settings["admin_port"])) + "/"
