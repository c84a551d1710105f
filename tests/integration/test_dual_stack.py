"""The peer port's default host ``::`` is bound dual-stack: one node answers on IPv4 and
IPv6 (issue 13, "IPv6 is first-class"). Real gunicorn on the loopback addresses."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import requests

from app.core.base.config import DEFAULTS

from .harness import Node

pytestmark = [pytest.mark.integration]


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def test_the_default_peer_host_answers_on_ipv4_and_ipv6(tmp_path: Path) -> None:
    if not _has_ipv6_loopback():
        pytest.skip("needs IPv6 on the loopback interface (::1)")
    with Node(tmp_path / "n", "n", settings={"peer_host": DEFAULTS["peer_host"]}) as node:
        for host in ("127.0.0.1", "[::1]"):
            r = requests.get(f"http://{host}:{node.peer_port}/health", timeout=10)
            assert r.status_code == 200, host


def test_other_hosts_are_bound_as_they_are() -> None:
    from app.core.base.lifeline import bind_hosts

    assert bind_hosts("::")[0] == "::"
    assert bind_hosts("127.0.0.1") == ["127.0.0.1"]
    assert bind_hosts("0.0.0.0") == ["0.0.0.0"]
    assert bind_hosts("::1") == ["::1"]
