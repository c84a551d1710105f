"""Crash bench: SIGKILL a real node's processes at random moments of a sync, N times.

Basant (a whole Procfile node on 127.0.0.1) holds ``--posts`` posts. Ahmed (another
whole node) follows her and, each round, is started, asked for a sync through his
admin API (``POST /sync``, small pages so that many files and index rows are written)
(``full``: before each round about half of his copies are deleted, so every round
writes files) and then, after a random ``0.2 .. --max-delay`` seconds, every process of his (admin
and peer gunicorn with their workers, the scheduler) gets SIGKILL at once. After each
kill every post file under Ahmed's ``posts/`` must verify whole (``verify_file``:
name = SHA-1, signature good); temporaries (``.tmp-*``, skipped by readers) are
counted. At the end ``diwan reindex`` must index exactly the files held, and a last,
uninterrupted sync must bring Ahmed every post. Bounded: ``--rounds`` kills.

    .venv/bin/python bench/crash.py                       # 10 rounds, 3000 posts
    .venv/bin/python bench/crash.py --rounds 3 --posts 1000
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_sync  # noqa: E402
import common  # noqa: E402

from app.core.base.datadir import DataDir  # noqa: E402
from app.core.base.fsio import TEMP_PREFIX  # noqa: E402
from app.core.posts.ingest import verify_file  # noqa: E402
from tests.integration.harness import Node  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


def check_files(root: Path) -> tuple[int, int, int]:
    """(whole post files, torn or wrong post files, temporaries) under ``root``."""
    dd = DataDir(root, environ={})
    whole = torn = temps = 0
    for folder, _dirs, files in os.walk(root):
        for name in files:
            path = Path(folder, name)
            if name.startswith(TEMP_PREFIX):
                temps += 1
            elif path.parent.parent == dd.posts:
                post = verify_file(dd, path)
                if post is None or post.sha1 != name:
                    torn += 1
                else:
                    whole += 1
    return whole, torn, temps


def forget_half(folder: Path, rng: random.Random) -> int:
    """Delete about half of the (stopped) follower's copies, so the next full sync has
    files to write again; returns how many."""
    if not folder.is_dir():
        return 0
    gone = [p for p in sorted(folder.iterdir()) if rng.random() < 0.5]
    for path in gone:
        path.unlink()
    return len(gone)


def kill_all(node: Node) -> None:
    for name in list(node.procs):
        node.kill(name, signal.SIGKILL, group=True)
    node.reap(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--posts", type=int, default=3000)
    parser.add_argument("--max-delay", type=float, default=1.5)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    tmp = Path(tempfile.mkdtemp(prefix="diwan-crash-"))
    basant, b_fp, _ = bench_sync.make_basant(tmp / "basant", args.posts, [500], 1, 2)
    _, a_fp = bench_sync.new_identity(tmp / "ahmed")
    ahmed = bench_sync.bench_node(tmp / "ahmed", "ahmed", workers=2, threads=2,
                                  settings={"max_page_size": 50, "sync_interval": 86400,
                                            "sync_max_pages": args.posts})
    rows = []
    torn_total = 0
    try:
        bench_sync.start_owned(basant, b_fp)
        for n in range(args.rounds):
            forgotten = forget_half(tmp / "ahmed" / "posts" / b_fp, rng)
            bench_sync.start_owned(ahmed, a_fp)
            if n == 0:
                bench_sync.follow(ahmed, a_fp, b_fp, basant)
            threading.Thread(target=lambda: _sync(ahmed, b_fp), daemon=True).start()
            delay = rng.uniform(0.2, args.max_delay)
            time.sleep(delay)
            kill_all(ahmed)
            whole, torn, temps = check_files(tmp / "ahmed")
            torn_total += torn
            rows.append([str(n + 1), str(forgotten), f"{delay:.2f} s", str(whole), str(torn),
                         str(temps)])
        out = subprocess.run([sys.executable, "-m", "app.cli", "--data-dir", str(tmp / "ahmed"),
                              "--json", "reindex"], cwd=REPO, capture_output=True, check=True)
        indexed = json.loads(out.stdout)["indexed"]
        whole, torn, temps = check_files(tmp / "ahmed")
        bench_sync.start_owned(ahmed, a_fp)
        status = bench_sync.admin_ok(ahmed, "POST", "/sync", timeout=600,
                                     json={"fingerprint": b_fp, "full": True})["statuses"][0]
        final, torn_after, _ = check_files(tmp / "ahmed")
        ahmed.stop()
    finally:
        ahmed.stop()
        basant.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"\n{args.rounds} SIGKILLs of every Ahmed process during a sync of "
          f"{args.posts:,} posts (pages of 50); seed {args.seed}")
    print(common.table(["round", "files deleted before", "killed after", "whole post files",
                        "torn files", "temporaries"], rows))
    print(f"reindex after the last kill: {indexed} indexed of {whole} whole files "
          f"({'same' if indexed == whole else 'DIFFERENT'})")
    print(f"last sync, uninterrupted: {status['posts_last_run']} new, "
          f"{final} of {args.posts} held, error {status['last_error']!r}")
    bad = torn_total + torn_after
    print(f"torn files over all rounds: {bad} (must be 0)")
    if bad or indexed != whole or final != args.posts:
        raise SystemExit(1)


def _sync(node: Node, fp: str) -> None:
    try:
        node.admin("POST", "/sync", json={"fingerprint": fp, "full": True}, timeout=120)
    except OSError:
        pass  # killed mid-request: that is the point


if __name__ == "__main__":
    main()
