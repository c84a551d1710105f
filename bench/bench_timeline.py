"""Newest-100 timeline latency and size on disk at N posts (default 10k and 100k).

For each size it generates (or reuses) ``bench/out/datadir-n<N>-m<M>-s1`` with
``gen_datadir``, then times in this process, ``--queries`` times each:

- ``page(limit=100)`` on the index alone (no reconcile);
- the same preceded by a forced ``reconcile()`` (a stat of ``posts/`` and every
  author directory: the most a query ever pays for self-repair; in service it
  runs at most once per ``reconcile_interval_ms``);
- the same with the default throttled self-repair (what the API does);
- one author's newest 100, the newest 100 profiles (a rare kind), a page 50 deep
  by cursor, and a 100-post ``feed_page`` for a viewer;
- once: the naive way (scandir and stat every post file, take the newest 100 by
  mtime), for comparison.

    .venv/bin/python bench/bench_timeline.py                      # 10k and 100k
    .venv/bin/python bench/bench_timeline.py --sizes 1000000      # 1M (a few minutes)
"""

from __future__ import annotations

import argparse
import heapq
import os
import random
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402
import gen_datadir  # noqa: E402

from app.core.base.datadir import DataDir  # noqa: E402
from app.core.posts import feedorder  # noqa: E402
from app.core.posts.index import Index  # noqa: E402
from app.core.posts.reconcile import open_index, reconcile  # noqa: E402


def authors_for(n: int) -> int:
    return min(1000, max(100, n // 100))


def timed(fn: Callable[[], Any], queries: int) -> tuple[float, float]:
    fn()  # warm
    samples = []
    for _ in range(queries):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return common.summary_ms(samples)


def naive_newest(posts: Path, k: int = 100) -> list[str]:
    """What listing without an index costs: stat every file, keep the newest k."""
    found: list[tuple[int, str]] = []
    with os.scandir(posts) as authors:
        for d in authors:
            with os.scandir(d.path) as files:
                for f in files:
                    if not f.name.startswith("."):
                        found.append((f.stat().st_mtime_ns, f.name))
    return [name for _, name in heapq.nlargest(k, found)]


def measure(n: int, queries: int) -> dict[str, Any]:
    m = authors_for(n)
    started = time.perf_counter()
    root, gen = gen_datadir.ensure(n, m)
    gen_s = time.perf_counter() - started if gen else None
    dd = DataDir(root)
    bare = Index(dd)  # no self-repair
    served = open_index(dd)  # default settings: reconcile at most once a second
    rng = random.Random(7)
    fps = sorted(p.name for p in dd.posts.iterdir())
    owner, viewer = rng.choice(fps), rng.choice(fps)
    deep: dict[str, Any] = {"cursor": None}
    for _ in range(50):
        deep["cursor"] = bare.page(limit=100, cursor=deep["cursor"]).next_cursor
    report = reconcile(bare, force=True)
    r: dict[str, Any] = {"n": n, "m": m, "gen_s": gen_s, "rescanned": report.dirs_scanned
                         if report else 0}
    r["newest"] = timed(lambda: bare.page(limit=100), queries)
    r["reconcile"] = timed(lambda: (reconcile(bare, force=True), bare.page(limit=100)), queries)
    r["served"] = timed(lambda: served.page(limit=100), queries)
    r["author"] = timed(lambda: bare.page(limit=100, authors=[owner]), queries)
    r["profiles"] = timed(lambda: bare.page(limit=100, kinds=["profile"]), queries)
    r["deep"] = timed(lambda: bare.page(limit=100, cursor=deep["cursor"]), queries)
    r["feed"] = timed(lambda: feedorder.feed_page(bare, owner, viewer, after=0,
                                                  limit=100), queries)
    t = time.perf_counter()
    naive_newest(dd.posts)
    r["naive_ms"] = (time.perf_counter() - t) * 1000
    files, allocated, apparent = common.disk_usage(dd.posts)
    bare.conn().execute("PRAGMA wal_checkpoint(TRUNCATE)")
    r["files"], r["posts_alloc"], r["posts_apparent"] = files, allocated, apparent
    r["index_bytes"] = sum(p.stat().st_size for p in dd.state.glob("index.sqlite3*"))
    bare.close()
    served.close()
    return r


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10000,100000",
                    help="comma-separated post counts (1000000 takes a few minutes to generate)")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--clean", action="store_true", help="delete generated data afterwards")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"machine: {common.machine()}; {args.queries} queries each; "
          f"times in ms (median / p95)")
    results = []
    for n in sizes:
        print(f"N = {n:,} ...", flush=True)
        results.append(measure(n, args.queries))
        if args.clean:
            shutil.rmtree(gen_datadir.default_dir(n, authors_for(n), 1), ignore_errors=True)
    fmt = lambda pair: f"{pair[0]:.2f} / {pair[1]:.2f}"  # noqa: E731
    print(common.table(
        ["posts", "authors", "newest 100", "+ forced reconcile", "as served (throttled)",
         "one author", "profiles only", "page 51 by cursor", "feed_page 100",
         "naive stat-all"],
        [[f"{r['n']:,}", f"{r['m']:,}", fmt(r["newest"]), fmt(r["reconcile"]),
          fmt(r["served"]), fmt(r["author"]), fmt(r["profiles"]), fmt(r["deep"]),
          fmt(r["feed"]), f"{r['naive_ms']:,.0f}"] for r in results]))
    print()
    print(common.table(
        ["posts", "generated in", "post files", "posts/ on disk (apparent)", "index size",
         "index bytes/post"],
        [[f"{r['n']:,}", "reused" if r["gen_s"] is None else f"{r['gen_s']:.0f} s",
          f"{r['files']:,}", f"{common.human(r['posts_alloc'])} "
          f"({common.human(r['posts_apparent'])})", common.human(r["index_bytes"]),
          f"{r['index_bytes'] / r['n']:.0f}"] for r in results]))
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
