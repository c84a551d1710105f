"""Soak: one real node, P simulated peers each asking for its feed R times a second.

The node is a whole Procfile node (admin and peer gunicorn on the shipped
defaults, 2 workers x 4 threads, and the scheduler) from
``tests/integration/harness.py``, with one own identity holding 200 posts.
Each simulated peer is a thread with its own keys (in memory, no key file) and
one keep-alive HTTP session; every ``1/R`` s it builds a fresh sealed feed
request (a new nonce: replays are refused) and POSTs it to ``/feeds/<fp>``.
The run is bounded by ``--duration``. Printed: requests, statuses, responses
>= 500, latency p50/p99/max, and the VmRSS of every node process at the end
of the first minute (``--baseline``) against its last and largest value
(the issue's rule: every process within 10 % of its value after the first
minute), and likewise the number of open file descriptors of each (a leak of
sockets or files shows as growth). A request that falls behind its slot is sent
at once (no catch-up burst).

    .venv/bin/python bench/soak.py                    # 10 peers x 10/s for 10 minutes
    .venv/bin/python bench/soak.py --duration 60 --baseline 10   # the CI variant
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_sync  # noqa: E402
import common  # noqa: E402

from app.core.base import crypto  # noqa: E402
from app.core.identity import keys  # noqa: E402
from app.core.identity.identities import Identities  # noqa: E402
from app.core.network import exchange  # noqa: E402
from app.core.posts.index import Index  # noqa: E402
from app.core.posts.ingest import Ingestor  # noqa: E402
from tests.integration.harness import Node  # noqa: E402


@dataclass
class Result:
    statuses: Counter[int] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    rss_base: dict[int, int] = field(default_factory=dict)
    rss_last: dict[int, int] = field(default_factory=dict)
    rss_max: dict[int, int] = field(default_factory=dict)
    labels: dict[int, str] = field(default_factory=dict)
    fds_base: dict[int, int] = field(default_factory=dict)
    fds_last: dict[int, int] = field(default_factory=dict)
    fds_max: dict[int, int] = field(default_factory=dict)

    @property
    def server_errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status >= 500)

    def rss_drift(self) -> dict[int, float]:
        """Largest relative change of each process after the baseline (0.05 = 5 %)."""
        return {pid: max(abs(self.rss_max[pid] - base), abs(self.rss_last.get(pid, 0) - base))
                / base for pid, base in self.rss_base.items() if base}

    def fd_growth(self) -> dict[int, int]:
        """Largest number of open file descriptors above the baseline, per process."""
        return {pid: self.fds_max[pid] - base for pid, base in self.fds_base.items()}


def open_fds(pid: int) -> int:
    """How many file descriptors ``pid`` holds open (0 once it has gone)."""
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


def make_node(root: Path, posts: int = 200) -> tuple[Node, str]:
    dd, fp = bench_sync.new_identity(root)
    seed = Identities(dd).open_seed(fp, bench_sync.PASSWORD)
    raws = bench_sync.text_posts(seed, posts, first_time=int(time.time()) - 3600)
    Ingestor(dd, index=Index(dd)).ingest_many(raws, author=fp)
    node = bench_sync.bench_node(root, "soak", workers=2, threads=4,
                                 settings={"sync_interval": 86400,
                                           # every simulated peer shares 127.0.0.1 (and,
                                           # as a stranger, its prefix's asker budget):
                                           # lift the peer-port budgets for the soak
                                           "budget_prefix_requests": 10**8,
                                           "budget_asker_requests": 10**8,
                                           "budget_asker_bytes": 2**40})
    return node.start(), fp


def _asker() -> exchange.OwnKeys:
    seed, transport = crypto.new_signing_seed(), crypto.new_transport_secret()
    pub = keys.certify(seed, crypto.transport_public(transport))
    return exchange.OwnKeys(fp=pub.fingerprint, pub_document=pub.to_bytes(),
                            transport_secret=transport)


def _peer(node: Node, owner: keys.PublicKey, rate: float, until: float, out: Result,
          lock: threading.Lock) -> None:
    asker, url = _asker(), f"{node.peer_url}/feeds/{owner.fingerprint}"
    with requests.Session() as session:
        next_at = time.monotonic()
        while next_at < until:
            time.sleep(max(0.0, next_at - time.monotonic()))
            body, _ = exchange.build_request(asker=asker, owner_fp=owner.fingerprint,
                                             owner_transport=owner.transport_public,
                                             after=0,
                                             limit=10, now=int(time.time()))
            start = time.perf_counter()
            try:
                status = session.post(url, data=body, timeout=10,
                                      headers={"Content-Type": "application/octet-stream"}
                                      ).status_code
            except requests.RequestException as exc:
                with lock:
                    out.errors[type(exc).__name__] += 1
                status = 0
            took = time.perf_counter() - start
            with lock:
                out.statuses[status] += 1
                out.latencies.append(took)
            next_at = max(next_at + 1 / rate, time.monotonic())


def _sample(node: Node, out: Result, started: float, baseline: float, until: float) -> None:
    while time.monotonic() < until:
        procs = bench_sync.node_processes(node)
        out.labels.update(procs)
        for pid in procs:
            rss = bench_sync.proc_status(pid)[0]
            if not rss:
                continue
            fds = open_fds(pid)
            out.rss_last[pid], out.fds_last[pid] = rss, fds
            if time.monotonic() - started >= baseline:
                out.rss_base.setdefault(pid, rss)
                out.rss_max[pid] = max(out.rss_max.get(pid, 0), rss)
                out.fds_base.setdefault(pid, fds)
                out.fds_max[pid] = max(out.fds_max.get(pid, 0), fds)
        time.sleep(1.0)


def soak(node: Node, fp: str, *, duration: float, peers: int, rate: float,
         baseline: float) -> Result:
    """Run the load for ``duration`` seconds against a started ``node``; return the figures."""
    owner = keys.parse_pub((node.root / "identities" / f"{fp}.pub").read_bytes())
    out, lock = Result(), threading.Lock()
    started = time.monotonic()
    until = started + duration
    threads = [threading.Thread(target=_peer, args=(node, owner, rate, until, out, lock))
               for _ in range(peers)]
    threads.append(threading.Thread(target=_sample, args=(node, out, started, baseline, until)))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def report(out: Result, args: argparse.Namespace) -> None:
    lat = sorted(out.latencies)
    total = sum(out.statuses.values())
    print("\n".join(bench_sync.machine_lines()))
    print(f"\n{args.peers} peers x {args.rate}/s for {args.duration:.0f} s: {total} requests "
          f"({total / args.duration:.1f}/s), statuses {dict(sorted(out.statuses.items()))}, "
          f">= 500: {out.server_errors}, client errors {dict(out.errors) or 0}")
    if lat:
        print(f"latency ms: p50 {common.percentile(lat, 50) * 1000:.1f}, "
              f"p99 {common.percentile(lat, 99) * 1000:.1f}, max {lat[-1] * 1000:.1f}\n")
    drift, fds = out.rss_drift(), out.fd_growth()
    rows = [(out.labels.get(pid, str(pid)), common.human(out.rss_base[pid]),
             common.human(out.rss_last.get(pid, 0)), common.human(out.rss_max[pid]),
             f"{drift[pid] * 100:+.1f} %",
             f"{out.fds_base.get(pid, 0)} / {out.fds_last.get(pid, 0)} / {out.fds_max.get(pid, 0)}")
            for pid in sorted(drift)]
    print(common.table([f"process (RSS after {args.baseline:.0f} s)", "baseline", "last",
                        "max", "largest change", "open fds base / last / max"], rows))
    worst = max(drift.values(), default=0.0)
    print(f"\nlargest RSS change after the baseline: {worst * 100:.1f} % (rule: within 10 %)")
    print(f"largest growth of open fds after the baseline: {max(fds.values(), default=0)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=600.0)
    parser.add_argument("--peers", type=int, default=10)
    parser.add_argument("--rate", type=float, default=10.0)
    parser.add_argument("--baseline", type=float, default=60.0,
                        help="seconds before the RSS baseline is taken")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="diwan-soak-"))
    try:
        node, fp = make_node(root / "node")
        try:
            report(soak(node, fp, duration=args.duration, peers=args.peers, rate=args.rate,
                        baseline=args.baseline), args)
        finally:
            node.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
