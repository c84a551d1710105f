"""Fixtures that start real nodes with :mod:`.harness`; every node is stopped at teardown."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from .harness import Node, stop_all

NodeFactory = Callable[..., Node]


@pytest.fixture
def make_node(tmp_path: Path) -> Iterator[NodeFactory]:
    """``make_node(name, start=True, **Node kwargs)``: a node in ``tmp_path/name``.

    Call it several times for several nodes; each gets its own directory and
    ports. All of them are stopped (and their processes reaped) afterwards,
    whatever the test did.
    """
    nodes: list[Node] = []

    def factory(name: str = "node", *, start: bool = True, **kw: Any) -> Node:
        node = Node(tmp_path / name, name, **kw)
        nodes.append(node)
        return node.start() if start else node

    try:
        yield factory
    finally:
        stop_all(nodes)


@pytest.fixture(scope="module")
def module_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    """One running node shared by a test module."""
    with Node(tmp_path_factory.mktemp("node") / "data", "node") as node:
        yield node
