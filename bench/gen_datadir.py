"""Generate a data directory of N signed posts over M authors, fast and reproducibly.

Posts are built with ``app.core.posts.codec.build_post`` (real Ed25519 signatures) in
worker processes, written straight to ``posts/<FP>/<SHA1>`` with their mtime set
to CREATED_TIME, then indexed with ``Index.add_many`` and one ``reconcile`` so the
index records every directory as clean. Same N, M and seed give the same posts.

    .venv/bin/python bench/gen_datadir.py --posts 100000 --authors 1000
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402

from app.core.base.datadir import DataDir  # noqa: E402
from app.core.base.fsio import syncfs  # noqa: E402
from app.core.posts.codec import decode_post  # noqa: E402
from app.core.posts.reconcile import open_index, reconcile  # noqa: E402

CHUNK = 5000
MARKER = "bench.json"
_people: list[common.Author] = []
_posts_dir = Path()


def _init(people: list[common.Author], posts_dir: Path) -> None:
    global _people, _posts_dir
    _people, _posts_dir = people, posts_dir


def _chunk(job: tuple[int, int, int, int, int]) -> list[bytes]:
    """Build and write one chunk of posts (in a worker); return their files' bytes."""
    chunk, first, count, seed, ties = job
    out = []
    for raw, meta in common.make_posts(chunk, first, count, _people, seed, ties):
        path = _posts_dir / meta.author / meta.sha1
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.write(fd, raw)
        os.close(fd)
        os.utime(path, (meta.created, meta.created))
        out.append(raw)
    return out


def default_dir(posts: int, authors: int, seed: int) -> Path:
    return common.OUT / f"datadir-n{posts}-m{authors}-s{seed}"


def generate(root: Path, posts: int, authors: int, *, seed: int = 1, ties: int = 3,
             workers: int | None = None, quiet: bool = False) -> dict[str, float]:
    """Create ``root`` afresh; return timings in seconds."""
    say = (lambda *a: None) if quiet else (lambda *a: print(*a, flush=True))
    if root.exists():
        shutil.rmtree(root)
    dd = DataDir(root)
    dd.initialise()
    started = time.perf_counter()
    people = common.authors(authors, seed)
    common.write_pubs(dd.identities, people)
    for a in people:
        (dd.posts / a.fp).mkdir(mode=0o700, exist_ok=True)
    index = open_index(dd, auto_reconcile=False)
    index.conn().execute("PRAGMA cache_size=-262144")  # 256 MiB while bulk loading
    limit = dd.settings["max_post_bytes"]
    jobs = [(n, first, min(CHUNK, posts - first), seed, ties)
            for n, first in enumerate(range(0, posts, CHUNK))]
    done = 0
    with multiprocessing.get_context("fork").Pool(
            workers or os.cpu_count(), _init, (people, dd.posts)) as pool:
        for raws in pool.imap(_chunk, jobs):  # decoded here: the index takes real posts
            index.add_many([decode_post(raw, max_bytes=limit) for raw in raws])
            done += len(raws)
            if done % 100_000 < CHUNK:
                say(f"  {done:>9,} posts  {time.perf_counter() - started:7.1f} s")
    built = time.perf_counter()
    syncfs(dd.posts)
    reconcile(index, force=True)  # records every author directory's mtime
    finished = time.perf_counter()
    timings = {"posts": posts, "authors": authors, "seed": seed, "ties": ties,
               "write_and_index_s": built - started, "reconcile_s": finished - built,
               "total_s": finished - started}
    (root / MARKER).write_text(json.dumps(timings, indent=2) + "\n")
    return timings


def ensure(posts: int, authors: int, *, seed: int = 1, root: Path | None = None,
           quiet: bool = False) -> tuple[Path, dict[str, float] | None]:
    """Reuse a generated directory if its marker matches, else generate it."""
    root = root or default_dir(posts, authors, seed)
    marker = root / MARKER
    if marker.exists():
        info = json.loads(marker.read_text())
        if (info["posts"], info["authors"], info["seed"]) == (posts, authors, seed):
            return root, None
    return root, generate(root, posts, authors, seed=seed, quiet=quiet)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--posts", "-n", type=int, default=10_000)
    ap.add_argument("--authors", "-m", type=int, default=100)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--ties", type=int, default=3, help="posts sharing each second")
    ap.add_argument("--out", type=Path, help="data directory (default bench/out/datadir-...)")
    ap.add_argument("--workers", type=int, default=None)
    args = ap.parse_args()
    root = args.out or default_dir(args.posts, args.authors, args.seed)
    print(f"generating {args.posts:,} posts over {args.authors:,} authors in {root}")
    t = generate(root, args.posts, args.authors, seed=args.seed, ties=args.ties,
                 workers=args.workers)
    rate = args.posts / t["total_s"]
    print(f"done in {t['total_s']:.1f} s ({rate:,.0f} posts/s): build+write+index "
          f"{t['write_and_index_s']:.1f} s, reconcile {t['reconcile_s']:.1f} s")


if __name__ == "__main__":
    main()
