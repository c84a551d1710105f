"""One sync round with many dead contacts: when are the live ones synced, when does it end?

A follower's node holds ``--live`` contacts served by a real peer app on
loopback and ``--dead`` contacts at a socket that accepts nothing and answers
nothing (each failed once before, its back-off over). The baseline, in the
same run, is the same live contacts without the dead ones. Printed: the time
from the round's start until the last live contact is synced, the round's
duration, the ratio to the baseline, and how many dead contacts were tried or
left for the next round.

    .venv/bin/python bench/bench_dead_contacts.py                     # 500 dead, 5 live
    .venv/bin/python bench/bench_dead_contacts.py --dead 200 --timeout 2 --round 30
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.core.network.rounds import DEADLINE_SKIP  # noqa: E402
from app.core.network.sync import sync_all  # noqa: E402
from tests.helpers.dead_contacts import (  # noqa: E402
    crowd,
    live_owners,
    make_template,
    never_answering,
)


def one_round(root: Path, template: tuple, dead: int, args: argparse.Namespace  # type: ignore[type-arg]
              ) -> tuple[float, float, int, int]:
    dd, me, owners = template
    with live_owners(dd, owners, root / "owners") as live, never_answering() as nowhere:
        c = crowd(dd, me, owners, root / "me", live, nowhere, dead, sync_timeout=args.timeout,
                  sync_round_time=args.round)
        seen: dict[str, float] = {}
        start = time.monotonic()
        results = sync_all(c.node, progress=lambda st: seen.setdefault(
            st.fingerprint, time.monotonic() - start))
        took = time.monotonic() - start
    left = sum(1 for st in results if st.skipped == DEADLINE_SKIP)
    return max(seen[fp] for fp in owners), took, dead - left, left


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dead", type=int, default=500)
    parser.add_argument("--live", type=int, default=5)
    parser.add_argument("--timeout", type=int, default=2, help="sync_timeout, seconds")
    parser.add_argument("--round", type=int, default=20, help="sync_round_time, seconds")
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    print(f"load average: {os.getloadavg()[0]:.2f}; {args.live} live, {args.dead} dead, "
          f"sync_timeout {args.timeout} s, sync_round_time {args.round} s")
    with tempfile.TemporaryDirectory() as tmp:
        template = make_template(Path(tmp) / "template", args.live)
        base = one_round(Path(tmp) / "base", template, 0, args)
        load = one_round(Path(tmp) / "load", template, args.dead, args)
    print("| round | last live synced (s) | round (s) | dead tried | dead left |")
    print("| --- | --- | --- | --- | --- |")
    for name, (last, took, tried, left) in (("live only", base), ("with dead", load)):
        print(f"| {name} | {last:.2f} | {took:.2f} | {tried} | {left} |")
    print(f"last live synced, with dead / live only: {load[0] / base[0]:.2f}x")


if __name__ == "__main__":
    main()
