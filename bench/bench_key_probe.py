"""Timing probe against ``GET /identities/<fp>`` (issue 8, attack 4, GET half).

Can a prober tell a fingerprint the node holds (a contact's key), a blocked one
and an unknown one apart by the time of the identical 404? The peer app runs
in-process (Flask test client: no network noise, so this is the prober's best
case); probes of the classes are interleaved, in a new random order each round. Printed: the
median time per class, its ratio to the "unknown" baseline of the same run, and
the accuracy of the best single-probe threshold classifier between each class
and "unknown" (0.5 = a coin toss). Nothing asserts a time.

    .venv/bin/python bench/bench_key_probe.py --rounds 20000
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from app import create_peer_app  # noqa: E402
from app.core.base import crypto  # noqa: E402
from app.core.base.datadir import DataDir  # noqa: E402
from app.core.identity import keys  # noqa: E402
from app.core.identity.identities import Identities  # noqa: E402
from app.core.network.contacts import Contacts  # noqa: E402


def new_key() -> keys.PublicKey:
    return keys.certify(crypto.new_signing_seed(),
                        crypto.transport_public(crypto.new_transport_secret()))


def best_accuracy(a: list[float], b: list[float]) -> float:
    """Accuracy of the best threshold telling single samples of ``a`` from ``b``."""
    labelled = sorted([(x, 0) for x in a] + [(x, 1) for x in b])
    n_a, n_b = len(a), len(b)
    below_a = below_b = 0
    best = 0.5
    for _, label in labelled:
        if label == 0:
            below_a += 1
        else:
            below_b += 1
        # "a" when below the threshold, or "b" when below: take the better of the two
        right = (below_a + (n_b - below_b)) / (n_a + n_b)
        best = max(best, right, 1 - right)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5000)
    parser.add_argument("--key-server", action="store_true", help="run in key-server mode")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        dd = DataDir(Path(tmp) / "node", {"key_server": args.key_server}, environ={})
        dd.initialise()
        ids = Identities(dd)
        own = ids.create("bench password, not secret")
        contact, blocked = new_key(), new_key()
        for key in (contact, blocked):
            ids.import_pub(key.to_bytes())
        Contacts(dd).put(contact.fingerprint, "http://127.0.0.1:9", own)
        ids.block(blocked.fingerprint)
        fps = {"unknown": new_key().fingerprint, "contact": contact.fingerprint,
               "blocked": blocked.fingerprint, "own (200)": own}
        client = create_peer_app({"data_dir": str(dd.root),
                                  "key_server": args.key_server}).test_client()
        times: dict[str, list[float]] = {name: [] for name in fps}
        for _ in range(200):  # warm-up
            for fp in fps.values():
                client.get(f"/identities/{fp}")
        order = list(fps.items())
        for _ in range(args.rounds):
            random.shuffle(order)  # no class always first (a position effect is no signal)
            for name, fp in order:
                t = time.perf_counter()
                client.get(f"/identities/{fp}")
                times[name].append(time.perf_counter() - t)
    base = statistics.median(times["unknown"])
    print(f"load average {os.getloadavg()[0]:.2f}; {args.rounds} rounds; "
          f"key_server={args.key_server}")
    print("| class | median µs | ratio to unknown | single-probe accuracy vs unknown |")
    print("| --- | --- | --- | --- |")
    for name, samples in times.items():
        med = statistics.median(samples)
        acc = best_accuracy(samples, times["unknown"]) if name != "unknown" else 0.5
        print(f"| {name} | {med * 1e6:.1f} | {med / base:.3f} | {acc:.3f} |")


if __name__ == "__main__":
    main()
