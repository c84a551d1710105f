"""The crash bench's small variant, as a test of correctness only (figures: bench/crash.py).

Two SIGKILLs of every process of a real node during each kind of write
(publishing, a sync, deleting, changing the password): no torn post file, no
acknowledged post lost nor acknowledged deletion undone, the key file opens
with the old or the new password, the node's repair makes the index agree with
the files, the node starts again each time, and at the end doctor, reindex and
an uninterrupted sync agree. Nothing about time is asserted.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import crash  # noqa: E402


def test_kills_during_every_kind_of_write_leave_a_whole_node(tmp_path: Path) -> None:
    run = crash.run(tmp_path, kills=2 * len(crash.KINDS), posts=300, max_delay=1.0, seed=7)
    faults = {kind: f for kind, f in run.figures.items() if f.faults}
    assert not faults, faults
    assert all(f.kills == 2 for f in run.figures.values())
    assert run.figures["publish"].acked > 0 and run.figures["password"].acked > 0
    final = run.final
    assert final.doctor_ok and final.indexed == final.whole, final
    assert final.synced == final.expected and final.sync_error is None, final
