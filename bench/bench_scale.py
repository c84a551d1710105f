"""What a 10-minute poll costs at scale: 1,000 nodes, a few hundred contacts each, some
popular authors with ~10,000 followers (issue 13, "Scale").

    .venv/bin/python bench/bench_scale.py [--nodes 1000] [--population 20000] [--poll 600]

Phase 1 measures real exchanges in one process, with the node's own code and files
(no network): the asker builds a request (``exchange.build_request``), the owner
serves it (``feeds.serve_feed``: budgets, the key slots, Noise, the nonce store, the
index, the padded response) and the asker opens it and stores the posts
(``open_response`` and the ingest path). Two kinds of poll: *quiet* (nothing new:
asked after the last position held, the page is empty) and *news* (one new post).
The baseline in the same run is one bare Noise IK exchange (both sides, no files):
the ratio column says what the node adds to it.

Phase 2 simulates the follow graph: a population of ``--population`` people with
Zipf-like popularity (the top authors get ~half of everyone as followers),
``--nodes`` of them simulated with a log-normal number of contacts (median 250,
clipped to 30-1,000); in-degrees are scaled from the sample to the population.
Each author posts ``--posts-per-day`` (popular ones ``--popular-posts``). Per node
and day at one poll per contact per ``--poll`` seconds: bytes sent and received
(exchange bodies + ``--http-overhead`` bytes of HTTP and TCP per exchange), CPU
seconds, as asker and as owner. Nothing asserts a time.
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
os.environ.setdefault("DIWAN_INSECURE_KDF", "1")  # key files made fast: not what is measured

from app.core.base import noise  # noqa: E402
from app.core.base.datadir import DataDir  # noqa: E402
from app.core.identity.identities import Identities  # noqa: E402
from app.core.network import exchange, feeds  # noqa: E402
from app.core.posts.codec import build_post  # noqa: E402
from app.core.posts.ingest import Ingestor  # noqa: E402
from bench.common import machine, table  # noqa: E402

PW = "a long bench password"
DAY = 86400


def node(root: Path) -> DataDir:
    dd = DataDir(root, {"lan_discovery": False, "budget_asker_requests": 10**9,
                        "budget_prefix_requests": 10**9, "budget_prefix48_requests": 10**9},
                 environ={})
    dd.initialise()
    return dd


class Pair:
    """Ahmed (asker) follows Basant (owner): two data directories in one process."""

    def __init__(self, root: Path) -> None:
        self.ahmed, self.basant = node(root / "ahmed"), node(root / "basant")
        a_ids, b_ids = Identities(self.ahmed), Identities(self.basant)
        self.a, self.b = a_ids.create(PW), b_ids.create(PW)
        a_ids.import_pub(b_ids.pub_document(self.b))
        b_ids.import_pub(a_ids.pub_document(self.a))
        self.seed = b_ids.open_seed(self.b, PW)
        self.asker = exchange.OwnKeys(self.a, a_ids.pub_document(self.a),
                                      a_ids.transport_secret(self.a))
        self.owner_transport = a_ids.public_key(self.b).transport_public
        self.rng = random.Random(1)
        self.newest = int(time.time()) - 40 * DAY
        self.epoch: int | None = None  # the cursor: the owner's epoch and last position
        self.after = 0
        self.post_bytes: list[int] = []
        for _ in range(20):
            self.write()
        self.ingestor = Ingestor(self.ahmed)

    def write(self, gap: int = 3 * 3600) -> None:
        self.newest += gap  # an ordinary author: posts hours apart
        words = " ".join(self.rng.choice(["salam", "diwan", "tea", "river", "poem"])
                         for _ in range(self.rng.randint(10, 60)))
        raw = build_post(self.seed, {"CREATED_TIME": self.newest, "TEXT": words})
        self.post_bytes.append(len(raw))
        Ingestor(self.basant).ingest(raw)

    def poll(self) -> tuple[int, int, float, float, int]:
        """One exchange as the sync makes it: (request bytes, response bytes, asker CPU s,
        owner CPU s, posts received)."""
        t0 = time.process_time()
        body, pending = exchange.build_request(
            asker=self.asker, owner_fp=self.b, owner_transport=self.owner_transport,
            epoch=self.epoch, after=self.after, limit=1000, now=int(time.time()),
            reach=["http://192.0.2.7:8889", "http://[2001:db8::7]:8889"])
        t1 = time.process_time()
        answer = feeds.serve_feed(self.basant, self.b, body, remote="192.0.2.7").read()
        t2 = time.process_time()
        response = exchange.open_response(answer, pending, max_bytes=32 << 20)
        self.ingestor.ingest_many(response.posts, author=self.b)
        self.epoch, self.after = response.epoch, (response.positions or [self.after])[-1]
        t3 = time.process_time()
        return len(body), len(answer), (t1 - t0) + (t3 - t2), t2 - t1, len(response.posts)


def bare_ik(rounds: int) -> float:
    """CPU seconds of one bare Noise IK exchange, both sides (the baseline)."""
    a, o = noise.generate_keypair(), noise.generate_keypair()
    t0 = time.process_time()
    for _ in range(rounds):
        i = noise.HandshakeState.initiator(b"p", a, o.public)
        r = noise.HandshakeState.responder(b"p", o)
        r.read_message(i.write_message(bytes(3076)))
        i.read_message(r.write_message(bytes(1500)))
        i.split()
        r.split()
    return (time.process_time() - t0) / rounds


def measure(rounds: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        pair = Pair(Path(tmp))
        pair.poll()  # Ahmed holds the feed: from here on, polls are as in steady state
        quiet = [pair.poll() for _ in range(rounds)]
        news = []
        for _ in range(rounds // 4):
            pair.write()
            news.append(pair.poll())
        post_mean = statistics.mean(pair.post_bytes)
    med = statistics.median
    return {"req": med(q[0] for q in quiet), "quiet_resp": med(q[1] for q in quiet),
            "news_resp": med(n[1] for n in news),
            "asker_cpu": med(q[2] for q in quiet), "owner_cpu": med(q[3] for q in quiet),
            "news_asker_cpu": med(n[2] for n in news), "news_owner_cpu": med(n[3] for n in news),
            "quiet_posts": med(q[4] for q in quiet), "post": post_mean,
            "ik": bare_ik(rounds)}


def simulate(m: dict[str, float], args: argparse.Namespace) -> list[dict[str, float]]:
    rng = random.Random(args.seed)
    pop = args.population
    weights = [1.0 / (rank + 10) ** 0.9 for rank in range(pop)]
    for top in range(args.popular):
        weights[top] = 0.0  # the popular authors are followed by a fixed share of everyone
    sample = rng.sample(range(pop), args.nodes - args.popular) + list(range(args.popular))
    polls = DAY / args.poll
    in_degree = [0] * pop
    follows: dict[int, int] = {}
    for person in sample:
        k = int(min(1000, max(30, rng.lognormvariate(5.52, 0.5))))  # median ~250
        chosen = {top for top in range(args.popular) if rng.random() < args.popular_share}
        while len(chosen) < k:
            chosen.update(rng.choices(range(pop), weights=weights, k=k - len(chosen)))
        chosen.discard(person)
        follows[person] = len(chosen)
        for j in chosen:
            in_degree[j] += 1
    scale = pop / len(sample)
    rows = []
    for person in sample:
        followers = in_degree[person] * scale
        popular = person < args.popular
        posts = args.popular_posts if popular else args.posts_per_day
        contacts = follows[person]
        asked = contacts * polls            # exchanges this node starts per day
        served = followers * polls          # exchanges it answers per day
        news = min(posts, polls)
        over = args.http_overhead
        up = asked * (m["req"] + over / 2) + served * (m["quiet_resp"] + over / 2) \
            + followers * news * (m["news_resp"] - m["quiet_resp"])
        down = asked * (m["quiet_resp"] + over / 2) + served * (m["req"] + over / 2) \
            + contacts * args.posts_per_day * (m["news_resp"] - m["quiet_resp"])
        cpu = asked * m["asker_cpu"] + served * m["owner_cpu"]
        rows.append({"contacts": contacts, "followers": followers, "popular": popular,
                     "up": up, "down": down, "cpu": cpu, "served_per_s": served / DAY,
                     "useful": (contacts * args.posts_per_day + followers * posts) * m["post"]})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--population", type=int, default=20000)
    parser.add_argument("--popular", type=int, default=5, help="popular authors among the nodes")
    parser.add_argument("--popular-share", type=float, default=0.5,
                        help="share of everyone following each popular author")
    parser.add_argument("--poll", type=int, default=600, help="seconds between polls")
    parser.add_argument("--posts-per-day", type=float, default=2.0)
    parser.add_argument("--popular-posts", type=float, default=10.0)
    parser.add_argument("--http-overhead", type=int, default=900,
                        help="bytes of HTTP headers and TCP/IP per exchange, both ways")
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    print(machine())
    m = measure(args.rounds)
    print("\nPhase 1: one exchange, measured (median of", args.rounds, "quiet polls)\n")
    print(table(["what", "value", "ratio to baseline"], [
        ["request body", f"{m['req']:.0f} B", ""],
        ["response, quiet poll (nothing new: an empty page)", f"{m['quiet_resp']:.0f} B",
         f"{m['quiet_resp'] / m['post']:.1f} x one post ({m['post']:.0f} B)"],
        ["response, one new post", f"{m['news_resp']:.0f} B", ""],
        ["asker CPU per quiet poll", f"{m['asker_cpu'] * 1e3:.2f} ms",
         f"{m['asker_cpu'] / m['ik']:.1f} x bare IK"],
        ["owner CPU per quiet poll", f"{m['owner_cpu'] * 1e3:.2f} ms",
         f"{m['owner_cpu'] / m['ik']:.1f} x bare IK"],
        ["owner CPU, one new post", f"{m['news_owner_cpu'] * 1e3:.2f} ms",
         f"{m['news_owner_cpu'] / m['ik']:.1f} x bare IK"],
        ["baseline: bare Noise IK exchange, both sides", f"{m['ik'] * 1e3:.2f} ms", "1.0"],
    ]))
    rows = simulate(m, args)
    ordinary = [r for r in rows if not r["popular"]]
    popular = [r for r in rows if r["popular"]]

    def moved(r: dict[str, float]) -> float:
        return (r["up"] + r["down"]) / max(r["useful"], 1)

    def pct(values: list[float], p: float) -> float:
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]

    print(f"\nPhase 2: {args.nodes} nodes of {args.population} people, one poll per contact "
          f"every {args.poll} s, per node and day\n")
    out = []
    for label, group in (("median node", 50), ("90th percentile", 90), ("99th percentile", 99)):
        out.append([label, f"{pct([r['contacts'] for r in ordinary], group):.0f}",
                    f"{pct([r['followers'] for r in ordinary], group):.0f}",
                    f"{pct([r['down'] for r in ordinary], group) / 1e6:.0f} MB",
                    f"{pct([r['up'] for r in ordinary], group) / 1e6:.0f} MB",
                    f"{pct([r['cpu'] for r in ordinary], group):.0f} s",
                    f"{pct([moved(r) for r in ordinary], group):.0f}"])
    for r in popular[:1]:
        out.append(["popular author", f"{r['contacts']:.0f}", f"{r['followers']:.0f}",
                    f"{r['down'] / 1e6:.0f} MB", f"{r['up'] / 1e6:.0f} MB", f"{r['cpu']:.0f} s",
                    f"{moved(r):.0f}"])
    print(table(["node", "contacts", "followers", "received", "sent", "CPU",
                 "bytes moved / post bytes delivered"], out))
    if popular:
        r = popular[0]
        print(f"\nThe popular author's node answers {r['served_per_s']:.1f} exchanges/s on "
              f"average ({r['up'] * 8 / DAY / 1e6:.2f} Mbit/s up, "
              f"{r['cpu'] / DAY * 100:.1f} % of one core).")


if __name__ == "__main__":
    main()
