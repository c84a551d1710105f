"""The soak's 60-second variant, as a test of correctness only (figures: bench/soak.py).

10 simulated peers x 10 feed requests a second against one real node: every
answer is a 200, none is a server error, no request fails. Nothing about time
or memory is asserted here.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import soak  # noqa: E402


def test_sixty_seconds_of_ten_peers(tmp_path: Path) -> None:
    node, fp = soak.make_node(tmp_path / "node")
    try:
        out = soak.soak(node, fp, duration=60, peers=10, rate=10, baseline=10)
    finally:
        node.stop()
    assert out.server_errors == 0 and not out.errors, (out.statuses, out.errors)
    assert set(out.statuses) == {200} and sum(out.statuses.values()) > 1000, out.statuses
