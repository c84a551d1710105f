"""Ingest rate (posts/s) next to the raw PyNaCl Ed25519 verify rate, in the same process.

Builds N signed posts over M authors (not timed), then measures, one after another
in this process:

1. raw verify: ``nacl.signing.VerifyKey.verify`` on each post's P1 and signature
   (one cached VerifyKey per author, as a tight loop would), the baseline;
2. ``pipeline.ingest_batches`` in batches (each batch verified, validated, written with
   one syncfs, indexed, durable before its result; the next batch's checks and file
   writes run on the helpers while this one is named and indexed, as a sync does), into
   a fresh data directory;
3. the same with one ``Ingestor.ingest_many`` call after the other (no overlap);
4. the same as 2 without the index (files only), to show what indexing costs;
5. the same with batches that mix many authors (a sync page holds one author's
   posts; mixed batches touch, and flush, many directories per batch);
6. per-feed batches with the index again, with the signature checks on threads in this
   process (``verify_processes`` = 0) instead of helper processes, for comparison.

``--growth N`` then compares the rate over the first 10,000 posts ingested (per-feed
batches, with the index) into a fresh data directory with the rate over the last 10,000
of N (into an index already holding N - 10,000): issue 14 wants them within 15 %. The
two are measured in alternating chunks of 2,000 posts, so that both share the machine's
noise (the disk here moves several-fold within a minute); ``--sequential`` adds the
older measure, one directory's first 10,000 then its last.
``--index-growth N`` does the same for ``Index.add_many`` alone (decoded posts, no
checks, no files): its wall time per post and the bytes it writes per post
(the WAL and the checkpoints) over the first and the last 10,000.
``--ceiling`` adds, each round, the same work on two cores with nothing shared and
nothing flushed (:mod:`ceiling`): what this work reaches on two processes with nothing
flushed (not a bound), and the share of it the per-feed ingest reaches; and the durable
ceiling, the same work made durable as ingest's group commit does it (one ``syncfs`` a
batch): what this work reaches here once durable, on two whole processes, against the
machine's limit, with the machine's busy share and CPU a post.
``--pair`` adds, each round, two whole ingests on alternate batches of one feed into one
data directory and index, each checking its own signatures and writing its own files,
with no helper (:mod:`pair`: the node's checks, index and bookkeeping in another
arrangement; speed only, not correct as an ingest).

    .venv/bin/python bench/bench_ingest.py --posts 20000 --batch 500
    .venv/bin/python bench/bench_ingest.py --posts 20000 --rounds 3 --ceiling --keep
    .venv/bin/python bench/bench_ingest.py --posts 20000 --rounds 3 --pair --keep
    .venv/bin/python bench/bench_ingest.py --posts 10000 --growth 100000
    .venv/bin/python bench/bench_ingest.py --posts 1000 --rounds 3 --index-growth 100000
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import resource
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import ceiling  # noqa: E402
import common  # noqa: E402
import nacl.signing  # noqa: E402  (the raw baseline; the app itself only uses app.core.base.crypto)
import pair  # noqa: E402

from app.core.base import verifyprocs  # noqa: E402
from app.core.base.crypto import CTX_POST  # noqa: E402
from app.core.base.datadir import DataDir  # noqa: E402
from app.core.base.encoding import b64d  # noqa: E402
from app.core.posts.codec import decode_post  # noqa: E402
from app.core.posts.index import Index  # noqa: E402
from app.core.posts.ingest import Ingestor  # noqa: E402
from app.core.posts.pipeline import ingest_batches  # noqa: E402

_people: list[common.Author] = []
_raws: list[bytes] = []


def _build(job: tuple[int, int, int, int]) -> list[bytes]:
    chunk, first, count, seed = job
    return [raw for raw, _ in common.make_posts(chunk, first, count, _people, seed, 3)]


def build(n: int, people: list[common.Author], seed: int) -> list[bytes]:
    global _people
    _people = people
    jobs = [(k, first, min(5000, n - first), seed) for k, first in enumerate(range(0, n, 5000))]
    with multiprocessing.get_context("fork").Pool(os.cpu_count()) as pool:
        return [raw for part in pool.map(_build, jobs) for raw in part]


def raw_verify_rate(raws: list[bytes], people: list[common.Author]) -> float:
    verify_keys = {a.fp: nacl.signing.VerifyKey(a.public_key)
                   for a in people}
    triples = []
    for raw in raws:
        p1, fp, sig = raw.split(b".")
        triples.append((verify_keys[fp.decode()], CTX_POST + p1, b64d(sig)))
    started = time.perf_counter()
    for key, message, sig in triples:
        key.verify(message, sig)
    return len(triples) / (time.perf_counter() - started)


def _verify_share(job: tuple[int, int]) -> float:
    """Verify every ``step``-th post from ``first`` (a forked child; returns seconds)."""
    first, step = job
    keys = {a.fp: nacl.signing.VerifyKey(a.public_key) for a in _people}
    triples = []
    for raw in _raws[first::step]:
        p1, fp, sig = raw.split(b".")
        triples.append((keys[fp.decode()], CTX_POST + p1, b64d(sig)))
    started = time.perf_counter()
    for key, message, sig in triples:
        key.verify(message, sig)
    return time.perf_counter() - started


def two_process_verify_rate(raws: list[bytes], people: list[common.Author]) -> float:
    """Raw verify on two forked processes at once (the machine's two cores)."""
    global _people, _raws
    _people, _raws = people, raws
    with multiprocessing.get_context("fork").Pool(2) as pool:
        seconds = pool.map(_verify_share, [(0, 2), (1, 2)])
    return len(raws) / max(seconds)


class _NoIndex:
    def add_many(self, posts: Any) -> int:
        return 0


def ingest_rate(root: Path, raws: list[bytes], people: list[common.Author], batch: int,
                with_index: bool, processes: int = 2,
                marks: list[float] | None = None, pipelined: bool = True) -> tuple[float, int]:
    """Posts/s of ingesting ``raws`` in durable batches into a fresh data directory:
    ``ingest_batches`` (the next batch checked while this one is stored, as a sync does)
    or, not ``pipelined``, one ``ingest_many`` call after the other; ``marks`` gets the
    clock (perf_counter) when the first batch starts (after the setup: the directory,
    the helpers), then after each batch."""
    if root.exists():
        raise SystemExit(f"{root} exists: each measure needs a fresh directory")
    os.sync()  # not timed: earlier measures' writes are committed now, not in this run's
    dd = DataDir(root, {"verify_processes": processes})
    dd.initialise()
    common.write_pubs(dd.identities, people)
    index: Any = Index(dd) if with_index else _NoIndex()
    ingestor = Ingestor(dd, index=index)
    verifyprocs.pool(processes)     # not timed: the helpers' start, once per process
    accepted = 0
    started = time.perf_counter()
    if marks is not None:
        marks.append(started)
    batches = (raws[start:start + batch] for start in range(0, len(raws), batch))
    results = (ingest_batches(ingestor, batches) if pipelined
               else (ingestor.ingest_many(b) for b in batches))
    for result in results:
        accepted += len(result.accepted)
        if result.rejected:
            raise SystemExit(f"unexpected rejections: {result.rejected[:3]}")
        if marks is not None:
            marks.append(time.perf_counter())
    elapsed = time.perf_counter() - started
    return len(raws) / elapsed, accepted


def growth(root: Path, n: int, people: list[common.Author], batch: int,
           seed: int) -> tuple[float, float, float]:
    """Rates (posts/s) over the first and the last 10,000 of ``n`` posts ingested into one
    data directory (per-feed batches, index), and the load average at the end."""
    raws = build(n, people, seed + 1)
    by_feed = sorted(raws, key=lambda raw: raw.split(b".")[1])
    marks: list[float] = []  # the start, then the end of each batch
    ingest_rate(root, by_feed, people, batch, True, marks=marks)
    per = 10_000 // batch
    first = 10_000 / (marks[per] - marks[0])
    last = 10_000 / (marks[-1] - marks[-1 - per])
    return first, last, os.getloadavg()[0]


def _setup(root: Path, people: list[common.Author]) -> Ingestor:
    """A fresh data directory at ``root`` (its authors' keys held) and an ingestor with
    the index, as :func:`ingest_rate` makes them (not timed)."""
    if root.exists():
        shutil.rmtree(root)
    dd = DataDir(root, {"verify_processes": 2})
    dd.initialise()
    common.write_pubs(dd.identities, people)
    verifyprocs.pool(2)
    return Ingestor(dd, index=Index(dd))


def _timed_chunk(ingestor: Ingestor, raws: list[bytes], batch: int) -> float:
    """Seconds to ingest ``raws`` through ``ingest_batches`` in batches of ``batch``."""
    started = time.perf_counter()
    for result in ingest_batches(ingestor, (raws[s:s + batch] for s in range(0, len(raws),
                                                                           batch))):
        if result.rejected:
            raise SystemExit(f"unexpected rejections: {result.rejected[:3]}")
    return time.perf_counter() - started


def growth_interleaved(root: Path, n: int, people: list[common.Author], batch: int,
                       seed: int, chunk: int = 2000) -> tuple[float, float, float, float]:
    """The rate over the first 10,000 posts ingested into a fresh directory and over the
    last 10,000 into one already holding ``n`` - 10,000, measured in alternating chunks of
    ``chunk`` posts (fresh, grown, fresh, grown, ...) so that both see the same minutes of
    the machine: on this VM the disk's rate moves several-fold within a minute, which
    :func:`growth` (first then last, ~15 s apart) takes for growth. The grown directory
    is filled first (not timed; its own first 10,000 are timed as :func:`growth` would,
    for comparison). Returns (first, last, sequential first, load average)."""
    raws = build(n, people, seed + 1)
    by_feed = sorted(raws, key=lambda raw: raw.split(b".")[1])
    grown = _setup(root / "grown", people)
    os.sync()
    sequential = 10_000 / _timed_chunk(grown, by_feed[:10_000], batch)
    _timed_chunk(grown, by_feed[10_000:n - 10_000], batch)
    fresh = _setup(root / "fresh", people)
    os.sync()
    first = last = 0.0
    for start in range(0, 10_000, chunk):
        first += _timed_chunk(fresh, by_feed[start:start + chunk], batch)
        last += _timed_chunk(grown, by_feed[n - 10_000 + start:n - 10_000 + start + chunk],
                             batch)
    return 10_000 / first, 10_000 / last, sequential, os.getloadavg()[0]


def _written() -> int:
    """Bytes this process has written so far (``/proc/self/io`` wchar)."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("wchar:"):
            return int(line.split()[1])
    return 0


def index_growth(root: Path, n: int, people: list[common.Author], batch: int,
                 seed: int) -> tuple[float, float, float, float]:
    """``Index.add_many`` alone over ``n`` decoded posts (per-feed batches) into a fresh
    index: µs per post over the first and the last 10,000, and bytes written per post
    (WAL and checkpoints) over each."""
    raws = sorted(build(n, people, seed + 1), key=lambda raw: raw.split(b".")[1])
    posts = [decode_post(raw, max_bytes=len(raw)) for raw in raws]
    if root.exists():
        shutil.rmtree(root)
    dd = DataDir(root, {})
    dd.initialise()
    index = Index(dd)
    marks = [(time.perf_counter(), _written())]
    for start in range(0, n, batch):
        index.add_many(posts[start:start + batch])
        marks.append((time.perf_counter(), _written()))
    index.close()
    per = 10_000 // batch
    (t0, w0), (t1, w1) = marks[0], marks[per]
    (t2, w2), (t3, w3) = marks[-1 - per], marks[-1]
    return ((t1 - t0) / 10_000 * 1e6, (t3 - t2) / 10_000 * 1e6, (w1 - w0) / 10_000,
            (w3 - w2) / 10_000)


def _cpu(pids: list[int]) -> tuple[float, float]:
    """User and system CPU seconds of these processes so far (from /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    user = system = 0.0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            user += int(fields[11]) / tick
            system += int(fields[12]) / tick
    return user, system


def profiled_ingest(root: Path, raws: list[bytes], people: list[common.Author], batch: int,
                    out: Path) -> None:
    """One per-feed ingest with the index under cProfile; the top of it to ``out``."""
    import cProfile
    import io
    import pstats

    helpers = verifyprocs.pool(2).pids()  # type: ignore[union-attr]
    own, theirs = resource.getrusage(resource.RUSAGE_SELF), _cpu(helpers)
    wall = time.perf_counter()
    prof = cProfile.Profile()
    prof.enable()
    ingest_rate(root, raws, people, batch, True)
    prof.disable()
    wall = time.perf_counter() - wall
    after, theirs_after = resource.getrusage(resource.RUSAGE_SELF), _cpu(helpers)
    text = io.StringIO()
    text.write(f"{len(raws):,} posts, wall {wall:.2f} s under cProfile; CPU seconds:"
               f" ingesting process user {after.ru_utime - own.ru_utime:.2f}"
               f" system {after.ru_stime - own.ru_stime:.2f};"
               f" {len(helpers)} helpers (signature checks, file writes) user"
               f" {theirs_after[0] - theirs[0]:.2f} system {theirs_after[1] - theirs[1]:.2f}"
               f"; load average {os.getloadavg()[0]:.2f}\n")
    pstats.Stats(prof, stream=text).sort_stats("tottime").print_stats(30)
    out.write_text(text.getvalue())


def _rounds_table(title: str, headers: list[str], rows: list[list[str]], summary: str
                  ) -> None:
    """Print ``title``, a table with one numbered row per round, then ``summary``."""
    print(f"\n{title}")
    print(common.table(["round", *headers], [[k + 1, *row] for k, row in enumerate(rows)]))
    print(summary)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--posts", "-n", type=int, default=20_000)
    ap.add_argument("--authors", "-m", type=int, default=100)
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=3, help="the median of this many runs each")
    ap.add_argument("--out", type=Path, default=common.OUT / f"ingest-{os.getpid()}",
                    help="a new or empty directory for the data (deleted at the end)")
    ap.add_argument("--keep", action="store_true", help="keep the data directories")
    ap.add_argument("--growth", type=int, default=0, metavar="N",
                    help="also ingest N posts into one directory: first vs last 10,000")
    ap.add_argument("--sequential", action="store_true",
                    help="with --growth, also the old measure: first then last 10,000")
    ap.add_argument("--index-growth", type=int, default=0, metavar="N",
                    help="also index N posts alone (no checks, no files): first vs last 10,000")
    ap.add_argument("--ceiling", action="store_true",
                    help="also, each round, the same work on two cores with nothing shared "
                         "or flushed, and with one syncfs a batch (bench/ceiling.py): what "
                         "the work itself leaves")
    ap.add_argument("--pair", action="store_true",
                    help="also, each round, two whole ingests on alternate batches of one "
                         "feed, no helpers (bench/pair.py: speed only, not correct)")
    ap.add_argument("--profile", type=Path, default=None, metavar="FILE",
                    help="also write a cProfile of one per-feed ingest (by own time) to FILE")
    args = ap.parse_args()
    print(f"machine: {common.machine()}")
    if args.out.exists() and any(args.out.iterdir()):  # it is deleted whole at the end
        raise SystemExit(f"--out {args.out} is not empty: give a new or empty directory")
    args.out.mkdir(parents=True, exist_ok=True)
    print(common.create_cost(args.out), flush=True)
    people = common.authors(args.authors, args.seed)
    raws = build(args.posts, people, args.seed)
    by_feed = sorted(raws, key=lambda raw: raw.split(b".")[1])  # stable: keeps time order
    runs = [("per-feed batches, + index", by_feed, True, 2, True),
            ("per-feed, + index, ingest_many one after the other", by_feed, True, 2, False),
            ("per-feed batches, files only", by_feed, False, 2, True),
            ("mixed-author batches, + index", raws, True, 2, True),
            ("per-feed, + index, checks on threads", by_feed, True, 0, True)]
    verify: list[float] = []
    verify2: list[float] = []
    create: list[float] = []
    rates: list[list[float]] = [[] for _ in runs]
    ceilings: list[list[ceiling.Ceiling]] = []  # (+ index, files only, durable) a round
    pairs: list[ceiling.Ceiling] = []  # two whole ingests, a round
    loads: list[float] = []
    try:
        for _ in range(args.rounds):  # baselines and results interleaved: the same noise
            verify.append(raw_verify_rate(raws, people))
            verify2.append(two_process_verify_rate(raws, people))
            create.append(common.create_syncfs_rate(args.out, raws, args.batch))
            for n, (_label, order, with_index, processes, piped) in enumerate(runs):
                rate, accepted = ingest_rate(args.out / f"run{n}-{len(create)}", order, people,
                                             args.batch, with_index, processes, pipelined=piped)
                rates[n].append(rate)
            if args.ceiling:
                ceilings.append([ceiling.ceiling_rate(args.out / f"ceiling{len(create)}-{x}",
                                                      by_feed, people, args.batch,
                                                      x != "files", durable=x == "durable")
                                 for x in ("index", "files", "durable")])
            if args.pair:
                pairs.append(pair.pair_rate(args.out / f"pair{len(create)}", by_feed, people,
                                            args.batch))
            loads.append(os.getloadavg()[0])
        rounds = range(args.rounds)
        grown = [growth_interleaved(args.out / f"growth{k}", args.growth, people, args.batch,
                                    args.seed + k) for k in rounds] if args.growth else []
        sequential = [growth(args.out / f"sequential{k}", args.growth, people, args.batch,
                             args.seed + k) for k in rounds] if args.sequential else []
        indexed = [index_growth(args.out / f"index{k}", args.index_growth, people, args.batch,
                                args.seed + k) for k in rounds] if args.index_growth else []
        if args.profile:
            profiled_ingest(args.out / "profiled", by_feed, people, args.batch, args.profile)
    finally:  # also after an error or ^C
        if not args.keep:
            shutil.rmtree(args.out, ignore_errors=True)
    print(common.RECENTLY_DELETED)
    med = statistics.median
    limit = min(med(verify), med(create))
    print(f"{args.posts:,} posts over {args.authors} authors, batches of {args.batch}, "
          f"median of {args.rounds} round{'s' * (args.rounds != 1)}, {accepted:,} accepted "
          "(3% are reshares: two signatures each); load average "
          f"{', '.join(f'{x:.2f}' for x in loads)}")
    rows = [["raw PyNaCl Ed25519 verify, one core", f"{med(verify):,.0f} verify/s",
             f"{med(verify) / limit:.2f}"],
            ["raw verify, two processes", f"{med(verify2):,.0f} verify/s",
             f"{med(verify2) / limit:.2f}"],
            [f"disk: create+write, one syncfs per {args.batch}", f"{med(create):,.0f} files/s",
             f"{med(create) / limit:.2f}"]]
    rows += [[f"ingest: {label}", f"{med(r):,.0f} posts/s",
              f"{med(r) / limit:.2f}"] for (label, *_), r in zip(runs, rates, strict=True)]
    if ceilings:
        for n, label in enumerate(("nothing shared or flushed, + index",
                                   "nothing shared or flushed, files only",
                                   f"one syncfs per {args.batch} as ingest's group commit, "
                                   "+ index")):
            rate = med(c[n].rate for c in ceilings)
            rows.append([f"ceiling: per-feed, two cores, {label}",
                         f"{rate:,.0f} posts/s", f"{rate / limit:.2f}"])
    if pairs:
        rate = med(x.rate for x in pairs)
        rows.append(["per-feed, + index, two whole ingests on alternate batches, no helpers "
                     "(speed only)", f"{rate:,.0f} posts/s", f"{rate / limit:.2f}"])
    print(common.table(["measure", "rate (median)", "vs the lower of verify and disk"], rows))
    print("each round (verify, 2-proc verify, disk, then each ingest row"
          f"{', then the three ceilings' if ceilings else ''}"
          f"{', then the two whole ingests' if pairs else ''}):")
    for k in range(args.rounds):
        print(f"  round {k + 1}: " + ", ".join(
            f"{x[k]:,.0f}" for x in (verify, verify2, create, *rates,
                                      *([[c[n].rate for c in ceilings] for n in range(3)]
                                        if ceilings else ()),
                                      *([[x.rate for x in pairs]] if pairs else ()))))
    if pairs:
        limits = [min(verify[k], create[k]) for k in range(args.rounds)]
        shares = [pairs[k].rate / limits[k] for k in range(args.rounds)]
        print("two whole ingests / that round's lower of verify and disk, each round: "
              f"{', '.join(f'{x:.2f}' for x in shares)}; median {med(shares):.2f}")
        shares = [pairs[k].rate / rates[0][k] for k in range(args.rounds)]
        print("two whole ingests / the per-feed ingest (+ index), each round: "
              f"{', '.join(f'{x:.2f}' for x in shares)}; median {med(shares):.2f}")
        print("the machine's busy share during the two whole ingests, and CPU a post (µs), "
              "each round: " + "; ".join(f"{x.busy:.2f}, {x.cpu_us:.0f}" for x in pairs))
    if ceilings:
        limits = [min(verify[k], create[k]) for k in range(args.rounds)]
        durable = [c[2] for c in ceilings]
        shares = [rates[0][k] / ceilings[k][0].rate for k in range(args.rounds)]
        print("per-feed ingest (+ index) / its ceiling (+ index), each round: "
              f"{', '.join(f'{x:.2f}' for x in shares)}; median {med(shares):.2f}")
        shares = [rates[0][k] / durable[k].rate for k in range(args.rounds)]
        print("per-feed ingest (+ index) / the durable ceiling, each round: "
              f"{', '.join(f'{x:.2f}' for x in shares)}; median {med(shares):.2f}")
        shares = [durable[k].rate / limits[k] for k in range(args.rounds)]
        print("durable ceiling / that round's lower of verify and disk, each round: "
              f"{', '.join(f'{x:.2f}' for x in shares)}; median {med(shares):.2f}")
        print("the machine's busy share of its CPUs during the durable ceiling, each round: "
              f"{', '.join(f'{d.busy:.2f}' for d in durable)}")
        print("CPU a post (µs: every CPU's busy time / posts) in the three ceilings "
              "(+ index, files only, durable), each round: "
              + "; ".join(", ".join(f"{x.cpu_us:.0f}" for x in c) for c in ceilings))
        shares = [durable[k].rate / durable[k].busy / limits[k] for k in range(args.rounds)]
        print("a linear estimate of the durable ceiling with every CPU busy (its rate / that "
              "share) / that round's lower of verify and disk, each round: "
              f"{', '.join(f'{x:.2f}' for x in shares)}; median {med(shares):.2f}")
    if grown:
        _rounds_table(
            f"growth: the first 10,000 posts into a fresh directory against the last 10,000 "
            f"of {args.growth:,} (per-feed batches of {args.batch}, index), in alternating "
            f"chunks of 2,000; {args.rounds} rounds",
            ["first 10,000 posts/s", "last 10,000 posts/s", "last / first",
             "first 10,000, not interleaved", "load"],
            [[f"{a:,.0f}", f"{b:,.0f}", f"{b / a:.2f}", f"{q:,.0f}", f"{ld:.2f}"]
             for a, b, q, ld in grown],
            f"median last / first: {med(b / a for a, b, _, _ in grown):.2f}")
    if sequential:
        _rounds_table(
            f"growth, not interleaved: {args.growth:,} posts into one directory, the first "
            f"10,000 then (~15 s later) the last, {args.rounds} rounds",
            ["first 10,000 posts/s", "last 10,000 posts/s", "last / first", "load"],
            [[f"{a:,.0f}", f"{b:,.0f}", f"{b / a:.2f}", f"{ld:.2f}"] for a, b, ld in sequential],
            f"median last / first: {med(b / a for a, b, _ in sequential):.2f}")
    if indexed:
        _rounds_table(
            f"index alone: {args.index_growth:,} decoded posts, Index.add_many in per-feed "
            f"batches of {args.batch}, {args.rounds} rounds",
            ["first 10,000 µs/post", "last 10,000 µs/post", "first / last",
             "bytes written/post first", "last"],
            [[f"{a:.1f}", f"{b:.1f}", f"{a / b:.2f}", f"{wa:,.0f}", f"{wb:,.0f}"]
             for a, b, wa, wb in indexed],
            f"median first / last (the rate ratio): {med(a / b for a, b, _, _ in indexed):.2f}"
            f"; load average {os.getloadavg()[0]:.2f}")
    if args.profile:
        print(f"profile of one per-feed ingest with the index: {args.profile}")


if __name__ == "__main__":
    main()
