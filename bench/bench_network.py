"""N real nodes (default 20) that each follow all the others: time until all posts are everywhere.

Each node is a whole Procfile node (admin and peer gunicorn, scheduler) from
``tests/integration/harness.py`` in its own data directory, on 127.0.0.1, with
one own identity. To fit N x 5 processes on a small machine every gunicorn
app runs **1 worker x 2 threads** (the node's default is 2 x 4). Once all are
up, every node follows every other one with ``PUT /contacts/<fp>`` on its admin
API (which fetches the key from the other's peer). Then each node gets
``--posts`` new public posts (``POST /posts/import`` on its own admin API, all
nodes at once), and the clock runs until every node holds every other node's
posts (checked on disk: ``posts/<FP>/<SHA1>`` in each data directory).

Two modes, each on a fresh network:

- ``scheduled``: the schedulers do the work (``sync_interval`` 5 s, or
  ``--interval``); expect up to one interval plus the sync itself. The nodes
  start together, so their timers tick nearly together; each round waits a
  random 0..interval seconds (fixed seed) before posting, so the rounds sample
  different phases of the timers;
- ``triggered``: ``sync_interval`` is an hour, and one ``POST /sync`` (all
  contacts) is sent to every node at once right after the posts are in.

While the posts spread, the VmRSS of every process of every node is sampled
(``/proc/<pid>/status``) every 100 ms: the peak of the total, and the largest
process of each kind.

    .venv/bin/python bench/bench_network.py                       # 20 nodes, both modes
    .venv/bin/python bench/bench_network.py --nodes 10 --modes triggered
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_sync  # noqa: E402  (machine_lines, new_identity, RssSampler, ...; repo on sys.path)
import common  # noqa: E402

from app.core.identity.identities import Identities  # noqa: E402
from app.core.posts import codec as posts  # noqa: E402
from tests.integration.harness import Node, free_port, start_all, stop_all  # noqa: E402

MiB = bench_sync.MiB


@dataclass
class Member:
    node: Node
    fp: str
    seed: bytes


@dataclass
class Result:
    mode: str
    nodes: int
    start_s: float = 0.0
    contacts_s: float = 0.0
    import_s: list[float] = field(default_factory=list)
    spread_s: list[float | None] = field(default_factory=list)  # posts in -> everywhere
    sync_calls_s: list[tuple[float, float]] = field(default_factory=list)  # fastest, slowest
    missing: int = 0
    sync_errors: int = 0
    idle_total: int = 0
    peak_total: int = 0
    cpu_s: float = 0.0
    exchanges: int = 0   # feed requests served (peer access logs) while the posts spread
    by_kind: dict[str, int] = field(default_factory=dict)


def in_parallel(jobs: list[Callable[[], Any]]) -> list[Any]:
    """Run each job on its own thread, all released at once; their results, in order."""
    barrier = threading.Barrier(len(jobs))
    out: list[Any] = [None] * len(jobs)

    def run(i: int, job: Callable[[], Any]) -> None:
        barrier.wait()
        try:
            out[i] = job()
        except Exception as exc:  # reported by the caller
            out[i] = exc

    threads = [threading.Thread(target=run, args=(i, j)) for i, j in enumerate(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    errors = [r for r in out if isinstance(r, Exception)]
    if errors:
        raise SystemExit(f"{len(errors)} jobs failed, the first: {errors[0]!r}")
    return out


def make_members(tmp: Path, n: int, interval: int, workers: int, threads: int) -> list[Member]:
    members = []
    for i in range(n):
        root = tmp / f"n{i:02d}"
        dd, fp = bench_sync.new_identity(root)
        seed = Identities(dd).open_seed(fp, bench_sync.PASSWORD)
        node = bench_sync.bench_node(root, f"n{i:02d}", workers=workers, threads=threads,
                    settings={"sync_interval": interval}, start_timeout=120)
        members.append(Member(node, fp, seed))
    return members


def start_network(members: list[Member]) -> None:
    """Start every node at once; any node whose ports turn out to be someone else's restarts."""
    start_all(m.node for m in members)
    for m in members:
        if not bench_sync.owns_ports(m.node, m.fp):
            m.node.stop()
            m.node.admin_port, m.node.peer_port = free_port(), free_port()
            bench_sync.start_owned(m.node, m.fp)
    for m in members:  # the scheduler's first run (5 s after it starts) finds no contact
        if not bench_sync.wait_for_log(m.node, "scheduler", "sync: ", 120):
            raise SystemExit(f"{m.node.name}: the scheduler did not run its first sync")


def follow_all(members: list[Member]) -> None:
    def one(me: Member) -> None:
        for other in members:
            if other is not me:
                bench_sync.follow(me.node, me.fp, other.fp, other.node)

    in_parallel([lambda m=m: one(m) for m in members])


def import_posts(members: list[Member], k: int) -> dict[str, list[str]]:
    """``k`` new public posts per node through its own admin API; {author fp: sha1s}."""
    now, stamp = int(time.time()), time.time_ns()  # a new text each round: new SHA-1s
    raws = {m.fp: [posts.build_post(m.seed, {"TEXT": f"post {j} from {m.node.name} {stamp}",
                                             "CREATED_TIME": now - 1}) for j in range(k)]
            for m in members}

    def one(m: Member) -> list[str]:
        return [bench_sync.admin_ok(m.node, "POST", "/posts/import",
                                    json={"post": raw.decode("ascii")})["sha1"]
                for raw in raws[m.fp]]

    shas = in_parallel([lambda m=m: one(m) for m in members])
    return {m.fp: s for m, s in zip(members, shas, strict=True)}


def wanted_paths(members: list[Member], shas: dict[str, list[str]]) -> set[str]:
    return {str(m.node.root / "posts" / other.fp / sha)
            for m in members for other in members if other is not m
            for sha in shas[other.fp]}


def wait_everywhere(missing: set[str], timeout: float) -> float | None:
    """Seconds until every path exists (None if ``timeout`` passes); ``missing`` shrinks."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        missing -= {p for p in missing if os.path.exists(p)}
        if not missing:
            return time.perf_counter() - started
        time.sleep(0.05)
    return None


def feed_requests(members: list[Member]) -> int:
    """Feed requests the peers have answered so far (their access log lines)."""
    return sum(m.node.log("peer").count('"POST /feeds/') for m in members)


def kind(label: str) -> str:
    """'n03 admin worker 1' -> 'admin worker'."""
    words = label.split()[1:]
    return " ".join(w for w in words if not w.isdigit())


def run_mode(tmp: Path, mode: str, args: argparse.Namespace) -> Result:
    interval = args.interval if mode == "scheduled" else 3600
    res = Result(mode, args.nodes)
    members = make_members(tmp / mode, args.nodes, interval, args.workers, args.threads)
    try:
        t = time.perf_counter()
        start_network(members)
        res.start_s = time.perf_counter() - t
        print(f"  {mode}: {args.nodes} nodes up in {res.start_s:.1f} s", flush=True)
        t = time.perf_counter()
        follow_all(members)
        res.contacts_s = time.perf_counter() - t
        print(f"  {mode}: {args.nodes * (args.nodes - 1)} contacts added in "
              f"{res.contacts_s:.1f} s", flush=True)
        pids: dict[int, str] = {}
        for m in members:
            pids.update(bench_sync.node_processes(m.node))
        time.sleep(0.5)
        sampler = bench_sync.RssSampler(pids, interval=0.1).start()
        res.idle_total = sum(f.before for f in sampler.figures.values())
        served = feed_requests(members)
        rng = random.Random(1)
        for rnd in range(1, args.rounds + 1):
            if mode == "scheduled":  # rounds would otherwise keep one phase of the timers
                time.sleep(rng.uniform(0, args.interval))
            spread_round(members, mode, args, res)
            took = f"{res.spread_s[-1]:.2f} s" if res.spread_s[-1] is not None else \
                "the time allowed"
            print(f"  {mode} round {rnd}: every post everywhere after {took}", flush=True)
        procs = sampler.stop()
        res.exchanges = feed_requests(members) - served
        res.peak_total, res.cpu_s = sampler.peak_total, sum(p.cpu for p in procs)
        for p in procs:
            k = kind(p.label)
            res.by_kind[k] = max(res.by_kind.get(k, 0), p.peak)
        res.sync_errors = sum(1 for m in members for st in bench_sync.admin_ok(
            m.node, "GET", "/sync")["statuses"] if st["last_error"])
    finally:
        stop_all([m.node for m in members])  # its files stay until the bench ends: a
        #                                       mode after a deletion would pay for it
        #                                       (common.RECENTLY_DELETED)
    return res


def spread_round(members: list[Member], mode: str, args: argparse.Namespace,
                 res: Result) -> None:
    """New posts on every node, then wait until each is on every other node."""
    t = time.perf_counter()
    shas = import_posts(members, args.posts)
    res.import_s.append(time.perf_counter() - t)
    missing = wanted_paths(members, shas)
    calls: list[float] = []
    syncer = None
    if mode == "triggered":
        syncer = threading.Thread(target=lambda: calls.extend(trigger_all(members)))
        syncer.start()
    res.spread_s.append(wait_everywhere(missing, args.timeout))
    if syncer is not None:
        syncer.join()
        res.sync_calls_s.append((min(calls), max(calls)))
    res.missing += len(missing)


def trigger_all(members: list[Member]) -> list[float]:
    """One ``POST /sync`` (every contact) to every node at once; each call's seconds."""
    def one(m: Member) -> float:
        t = time.perf_counter()
        bench_sync.admin_ok(m.node, "POST", "/sync", json={}, timeout=600)
        return time.perf_counter() - t

    return in_parallel([lambda m=m: one(m) for m in members])


def report(results: list[Result], args: argparse.Namespace) -> None:
    n = args.nodes
    print(f"\n{n} nodes, each following the other {n - 1}; per round {args.posts} new posts per "
          f"node ({n * (n - 1) * args.posts:,} copies to deliver); gunicorn "
          f"{args.workers} worker x {args.threads} threads per app; load average now "
          f"{os.getloadavg()[0]:.2f} (this run's own nodes included)")
    rows = []
    for r in results:
        spread = ", ".join("-" if x is None else f"{x:.2f}" for x in r.spread_s) + " s"
        if r.missing:
            spread += f" ({r.missing} copies never arrived within {args.timeout:.0f} s)"
        how = f"schedulers, sync_interval {args.interval} s" if r.mode == "scheduled" else \
            "one POST /sync per node, all at once"
        calls = ", ".join(f"{a:.2f}/{b:.2f}" for a, b in r.sync_calls_s) + " s" \
            if r.sync_calls_s else "-"
        per = f" ({1000 * r.cpu_s / r.exchanges:.1f} ms per exchange)" if r.exchanges else ""
        rows.append([how, spread, calls, f"{max(r.import_s):.2f} s", str(r.sync_errors),
                     f"{r.exchanges:,}", f"{r.cpu_s:.1f} s{per}", f"{r.idle_total / MiB:,.0f} MiB",
                     f"{r.peak_total / MiB:,.0f} MiB"])
    print(common.table(["mode", "posts everywhere after (each round)",
                        "POST /sync fastest/slowest", "import (max)", "sync errors",
                        "feed exchanges", "CPU, all nodes", "total RSS idle",
                        "total RSS peak"], rows))
    kinds = sorted({k for r in results for k in r.by_kind})
    print("\nlargest process of each kind while the posts spread (MiB)")
    print(common.table(["mode", *kinds], [[r.mode, *(f"{r.by_kind.get(k, 0) / MiB:.1f}"
                                                      for k in kinds)] for r in results]))
    print("\nset-up: " + "; ".join(f"{r.mode}: nodes up {r.start_s:.1f} s, "
                                    f"{n * (n - 1)} PUT /contacts {r.contacts_s:.1f} s"
                                    for r in results))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=20)
    ap.add_argument("--posts", type=int, default=3, help="new posts per node")
    ap.add_argument("--rounds", type=int, default=3, help="rounds of new posts per mode")
    ap.add_argument("--modes", default="scheduled,triggered")
    ap.add_argument("--interval", type=int, default=5, help="sync_interval, scheduled mode")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=180, help="give up waiting after this")
    args = ap.parse_args()
    for line in bench_sync.machine_lines():
        print(line, flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="diwan-bench-network-"))
    results = []
    try:
        for mode in [m.strip() for m in args.modes.split(",") if m.strip()]:
            if mode not in ("scheduled", "triggered"):
                raise SystemExit(f"unknown mode {mode!r}")
            results.append(run_mode(tmp, mode, args))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    report(results, args)


if __name__ == "__main__":
    main()
