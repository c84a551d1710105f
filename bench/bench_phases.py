"""Where a per-feed ingest's wall time goes, phase by phase, and who is busy meanwhile.

One per-feed ingest with the index (``bench_ingest.ingest_rate``: ``ingest_batches``,
batches of 500) per round, with the ingesting thread's steps wrapped: for each phase
(``check_batch``; ``check_ahead``, the next batch split, parsed and sent during the
flush; ``_add_rows``, the rows and their COMMIT; the waits for a helper's answers,
by the phase they happen in; the wait for the flush thread), its wall milliseconds a
batch, the share of it the ingesting thread spent on a CPU and how many cores the
helper processes kept busy (``/proc/<pid>/schedstat``). Then the whole machine over
the round (``/proc/stat``, the hypervisor's steal left out): cores busy, and CPU µs a
post of this process and its helpers against everything else (all counted in clock
ticks, so a few µs either way: a small negative "everything else" is that). Wrapping
costs a few µs a call, so the rates are a little below ``bench_ingest.py``'s; the
shares are what this measure is for (bench/README.md, "Issue 14, stop 28").

    .venv/bin/python bench/bench_phases.py --posts 20000 --rounds 2
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_ingest  # noqa: E402
import common  # noqa: E402

from app.core.base import verifyprocs  # noqa: E402
from app.core.posts import ingest, storebatch  # noqa: E402

# phase -> [wall ns, ingesting thread on-CPU ns, helpers on-CPU ns, calls]
_acc: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0, 0, 0])
_stack: list[list[Any]] = []  # [phase, snapshot when its running segment began]
_me = threading.get_native_id()
_helpers: list[int] = []


def _snap() -> tuple[int, int, int]:
    return (time.perf_counter_ns(), common.schedstat(f"/proc/self/task/{_me}")[0],
            sum(common.schedstat(f"/proc/{pid}")[0] for pid in _helpers))


def _close(name: str, a: tuple[int, int, int], b: tuple[int, int, int]) -> None:
    x = _acc[name]
    for k in range(3):
        x[k] += b[k] - a[k]
    x[3] += 1


def _timed(name: str, f: Callable[..., Any]) -> Callable[..., Any]:
    """``f`` with its time charged to ``name`` (less the nested phases' time)."""
    def run(*args: Any, **kwargs: Any) -> Any:
        if threading.get_native_id() != _me:
            return f(*args, **kwargs)
        label = f"{name} <{_stack[-1][0]}>" if name.startswith("wait") and _stack else name
        now = _snap()
        if _stack:
            _close(_stack[-1][0], _stack[-1][1], now)
        _stack.append([label, now])
        try:
            return f(*args, **kwargs)
        finally:
            end = _snap()
            _close(*_stack.pop(), end)
            if _stack:
                _stack[-1][1] = end
    return run


def _instrument() -> None:
    for name in ("check_batch", "check_ahead", "_add_rows", "store_deferred"):
        setattr(ingest.Ingestor, name, _timed(name, getattr(ingest.Ingestor, name)))
    for name in ("_finish_links", "_write_here"):
        setattr(storebatch, name, _timed(name, getattr(storebatch, name)))
    verifyprocs.VerifyPool.collect = _timed(  # type: ignore[method-assign]
        "wait for a helper", verifyprocs.VerifyPool.collect)
    join = threading.Thread.join

    def joined(thread: threading.Thread, timeout: float | None = None) -> None:
        if thread.name == "diwan-flush" and thread.is_alive():
            return _timed("wait for the flush", join)(thread, timeout)  # type: ignore[no-any-return]
        return join(thread, timeout)
    threading.Thread.join = joined  # type: ignore[method-assign]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--posts", "-n", type=int, default=20_000)
    ap.add_argument("--authors", "-m", type=int, default=100)
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--out", type=Path, default=common.OUT / f"phases-{os.getpid()}",
                    help="where the data directories go (kept: see bench/README.md)")
    args = ap.parse_args()
    people = common.authors(args.authors, 1)
    raws = sorted(bench_ingest.build(args.posts, people, 1), key=lambda r: r.split(b".")[1])
    pool = verifyprocs.pool(2)
    _helpers.extend(pool.pids())  # type: ignore[union-attr]
    _instrument()
    tick = os.sysconf("SC_CLK_TCK")
    print(common.machine())
    for k in range(args.rounds):
        _acc.clear()
        before = common.cpu_jiffies()
        own = os.times()
        theirs = bench_ingest._cpu(_helpers)
        started = time.perf_counter()
        rate, _ = bench_ingest.ingest_rate(args.out / f"round{k}", raws, people, args.batch,
                                           True)
        wall = time.perf_counter() - started
        after, own_after = common.cpu_jiffies(), os.times()
        theirs_after = bench_ingest._cpu(_helpers)
        busy = common.busy_ticks(before, after)[0] / tick
        ours = (own_after.user + own_after.system - own.user - own.system
                + sum(theirs_after) - sum(theirs))
        batches = args.posts / args.batch
        print(f"\nround {k + 1}: {rate:,.0f} posts/s, {wall / batches * 1e3:.1f} ms a batch;"
              f" load average {os.getloadavg()[0]:.2f}")
        rows = []
        for name, (w, m, h, _n) in sorted(_acc.items(), key=lambda kv: -kv[1][0]):
            rows.append([name, f"{w / batches / 1e6:.2f}", f"{m / max(w, 1):.2f}",
                         f"{h / max(w, 1):.2f}"])
        print(common.table(["phase (ingesting thread)", "ms a batch", "on a CPU",
                            "helpers' busy cores"], rows))
        print(f"machine: {busy / wall:.2f} of {os.cpu_count()} cores busy; CPU a post:"
              f" this process and its helpers {ours / args.posts * 1e6:.0f} µs, everything"
              f" else {(busy - ours) / args.posts * 1e6:.0f} µs (counted in clock ticks of"
              f" 1/{tick} s: one tick is {1 / tick / args.posts * 1e6:.1f} µs a post)")


if __name__ == "__main__":
    main()
