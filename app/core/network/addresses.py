"""The addresses at which friends can reach this node's peer API (README "Reaching friends").

A peer API bound to a wildcard (``0.0.0.0`` or ``::``) is reachable at every
address of the machine; loopback addresses are useless to a friend and link-
local ones need an interface name, so both are left out. ``public_url``, when
set, is listed first: it is what the owner knows works from outside (a port
forward, a name of their own).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Mapping
from typing import Any

import psutil

WILDCARDS = ("0.0.0.0", "::", "")


def url(host: str, port: int) -> str:
    """``http://host:port`` (IPv6 hosts in brackets)."""
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def machine_addresses() -> list[str]:
    """Every usable IP address of this machine (not loopback, not link-local), IPv4 first."""
    found: set[ipaddress.IPv4Address | ipaddress.IPv6Address] = set()
    for entries in psutil.net_if_addrs().values():
        for entry in entries:
            if entry.family not in (socket.AF_INET, socket.AF_INET6):
                continue
            try:
                ip = ipaddress.ip_address(entry.address.split("%", 1)[0])
            except ValueError:
                continue
            if not (ip.is_loopback or ip.is_link_local or ip.is_unspecified):
                found.add(ip)
    return [str(ip) for ip in sorted(found, key=lambda ip: (ip.version, int(ip)))]


def peer_urls(settings: Mapping[str, Any]) -> list[str]:
    """The peer API URLs a friend can use: ``public_url`` if set, then the bound address
    (or, for a wildcard bind, every usable address of the machine)."""
    host, port = str(settings["peer_host"]), int(settings["peer_port"])
    out = [str(settings["public_url"])] if settings.get("public_url") else []
    hosts = machine_addresses() if host in WILDCARDS else [host]
    out += [url(h, port) for h in hosts if url(h, port) not in out]
    return out


def page_url(settings: Mapping[str, Any]) -> str:
    """The URL of the node's own web pages (the admin port), as a browser on this machine
    opens it: a wildcard admin bind address is shown as 127.0.0.1."""
    host = str(settings["admin_host"])
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    return url(host, int(settings["admin_port"])) + "/"
