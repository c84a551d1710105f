"""How well can a timing probe tell whether ``POST /feeds/<fp>`` hosts ``fp``? (issue 8, attack 4)

A prober who does not hold the owner's transport key sends a body that does
not authenticate, once for a fingerprint the node hosts and once for one it
does not (known to it, or never heard of), and times the one 400 answer. The
script alternates such probes, learns the best threshold on the first half of
the timings and reports its accuracy on the second half: 0.50 means the probe
learns nothing; the old code (404 against 400, plus a transport-secret cache)
told them apart every time by status, and by time alone at ~0.91 in process.

Each probe names the hosted identity's current transport key in its key id
(public: it is in the identity's ``.pub``), so that for the hosted fingerprint
the owner runs its real key and for the other one a decoy: the strongest probe
of the one-slot rule. Two settings, same run: in process (``serve_feed`` only, no sockets: the most
sensitive), and over HTTP against the real peer app under gunicorn.

    .venv/bin/python bench/bench_probe.py              # 4,000 probes per setting
    .venv/bin/python bench/bench_probe.py --probes 20000
"""

from __future__ import annotations

import argparse
import http.client
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_sync  # noqa: E402  (puts the repository root on sys.path)
import common  # noqa: E402

from app.core.base.datadir import DataDir  # noqa: E402
from app.core.base.errors import NotAuthenticated  # noqa: E402
from app.core.identity.identities import Identities  # noqa: E402
from app.core.network import exchange  # noqa: E402
from app.core.network.feeds import serve_feed  # noqa: E402

UNLIMITED = {"budget_prefix_requests": 10**9, "budget_prefix48_requests": 10**9}


def accuracy(hosted: list[int], other: list[int]) -> float:
    """Accuracy on the second half of the best one-threshold rule learnt on the first half."""
    half = len(hosted) // 2
    train = sorted([(t, 1) for t in hosted[:half]] + [(t, 0) for t in other[:half]])
    best, rule = 0.0, (0, True)
    for i in range(0, len(train), max(1, len(train) // 400)):
        cut = train[i][0]
        for hosted_below in (True, False):
            ok = sum((t <= cut) == hosted_below if y else (t <= cut) != hosted_below
                     for t, y in train) / len(train)
            if ok > best:
                best, rule = ok, (cut, hosted_below)
    cut, below = rule
    test = [(t, 1) for t in hosted[half:]] + [(t, 0) for t in other[half:]]
    return sum((t <= cut) == below if y else (t <= cut) != below for t, y in test) / len(test)


def probe(send: Callable[[str], None], fps: tuple[str, str], n: int) -> tuple[list[int], ...]:
    out: tuple[list[int], list[int]] = ([], [])
    for i in range(n):
        which = i % 2
        started = time.perf_counter_ns()
        send(fps[which])
        out[which].append(time.perf_counter_ns() - started)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--probes", type=int, default=4000)
    args = ap.parse_args()
    for line in bench_sync.machine_lines():
        print(line, flush=True)
    root = Path(tempfile.mkdtemp(prefix="diwan-bench-probe-")) / "owner"
    dd, fp = bench_sync.new_identity(root)
    other = os.urandom(32).hex()
    dd = DataDir(root, UNLIMITED, environ={})
    # The key id of the hosted identity's transport key (public, in its .pub): for the
    # hosted fingerprint the real key is tried, for the other one a decoy.
    key_id = exchange.key_id(Identities(dd).public_key(fp).transport_public)
    body = exchange.VERSION_BYTE + key_id + os.urandom(exchange.MESSAGE1_BYTES)
    rows = []
    Identities(dd)  # the same data directory object for every probe

    def in_process(target: str) -> None:
        try:
            serve_feed(dd, target, body, remote="192.0.2.1")
        except NotAuthenticated:
            return
        raise SystemExit("a probe authenticated")

    probe(in_process, (fp, other), 400)  # warm up
    hosted, unhosted = probe(in_process, (fp, other), args.probes)
    rows.append(["in process (serve_feed)", f"{statistics.median(hosted) / 1000:.1f}",
                 f"{statistics.median(unhosted) / 1000:.1f}",
                 f"{accuracy(hosted, unhosted):.3f}"])
    node = bench_sync.bench_node(root, "owner", settings=UNLIMITED)
    bench_sync.start_owned(node, fp)
    try:
        conn = http.client.HTTPConnection("127.0.0.1", node.peer_port or 0)

        def over_http(target: str) -> None:
            conn.request("POST", f"/feeds/{target}", body=body,
                         headers={"Content-Type": "application/octet-stream"})
            r = conn.getresponse()
            r.read()
            if r.status != 400:
                raise SystemExit(f"HTTP {r.status}")

        probe(over_http, (fp, other), 400)
        hosted, unhosted = probe(over_http, (fp, other), args.probes)
        rows.append(["HTTP, gunicorn peer app", f"{statistics.median(hosted) / 1000:.1f}",
                     f"{statistics.median(unhosted) / 1000:.1f}",
                     f"{accuracy(hosted, unhosted):.3f}"])
    finally:
        node.stop()
    print(f"\n{args.probes:,} probes per setting, alternating hosted / not hosted; "
          f"load average now {os.getloadavg()[0]:.2f}")
    print(common.table(["where", "median µs, hosted", "median µs, not hosted",
                        "single-probe accuracy (0.5 = chance)"], rows))


if __name__ == "__main__":
    main()
