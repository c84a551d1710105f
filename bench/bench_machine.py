"""Where the whole machine's CPU goes during a per-feed ingest: every process, the kernel too.

``bench_phases.py`` follows the ingesting thread and ``--profile`` samples Python frames;
neither sees the helpers' system calls, the kernel's writeback threads or the cores left
idle. This bench runs per-feed ingests with the index (``bench_ingest.ingest_rate``:
``ingest_batches``, batches of 500) one after another while ``perf record -a -e
cpu-clock`` samples every CPU (software clock: no hardware counters needed), then prints:

1. the machine's time by who (the ingesting thread, the other threads of its process,
   each signature-check helper, the kernel's writeback workers, idle, anything else) and
   by what (libsodium, the Python interpreter, SQLite, the kernel, libc, other): the
   shares add up to 100 % of all the CPUs over the sampled seconds;
2. the kernel's time in each of those processes by system call (the frame right below
   ``do_syscall_64``), and page faults;
3. the ingest rates measured meanwhile and the load average.

Needs ``perf`` (Debian's ``linux-perf``) and the right to sample every CPU (root, or
``kernel.perf_event_paranoid`` <= 0). The data directories are kept (``--out``; see
``common.RECENTLY_DELETED``). bench/README.md ("Issue 14, stop 29") has a run.

    .venv/bin/python bench/bench_machine.py --posts 20000 --seconds 6
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_ingest  # noqa: E402
import common  # noqa: E402

from app.core.base import verifyprocs  # noqa: E402

_LIBRARY = [("_sodium", "libsodium (verify)"), ("libpython", "Python"), ("/python3", "Python"),
            ("sqlite", "SQLite"), ("kernel.kallsyms", "kernel"), ("libc.so", "libc")]
_SYSCALL = re.compile(r"^(?:__x64_sys_|__do_sys_|ksys_|__se_sys_)(\w+)$")


def _library(dso: str) -> str:
    return next((name for part, name in _LIBRARY if part in dso), "other")


def samples(data: Path) -> list[tuple[str, int, int, list[tuple[str, str]]]]:
    """``perf script`` of ``data``: per sample (comm, pid, tid, [(symbol, dso), leaf first])."""
    text = subprocess.run(["perf", "script", "-i", os.fspath(data), "-F",
                           "comm,pid,tid,ip,sym,dso"], capture_output=True, text=True,
                          check=True).stdout
    out: list[tuple[str, int, int, list[tuple[str, str]]]] = []
    for block in text.split("\n\n"):
        lines = block.strip("\n").split("\n")
        head = re.match(r"^(.*?)\s+(\d+)/(\d+)", lines[0]) if lines[0] else None
        if head is None:
            continue
        frames = []
        for line in lines[1:]:
            m = re.match(r"^\s*[0-9a-f]+\s+(.*?)\s+\((.*)\)$", line)
            if m:
                frames.append((re.sub(r"\+0x[0-9a-f]+$", "", m.group(1)), m.group(2)))
        out.append((head.group(1), int(head.group(2)), int(head.group(3)), frames))
    return out


def _who(comm: str, pid: int, tid: int, helpers: dict[int, str], ingesting: int) -> str:
    if pid == os.getpid():
        return "ingesting thread" if tid == ingesting else "its other threads (the flush)"
    if pid in helpers:
        return helpers[pid]
    if comm == "swapper":
        return "idle"
    if comm.startswith("kworker"):
        return "kernel workers (writeback)"
    return "everything else"


def _syscall(frames: list[tuple[str, str]]) -> str | None:
    names = [f[0] for f in frames]
    if "do_syscall_64" in names:
        i = names.index("do_syscall_64")
        for name in reversed(names[:i]):  # from the entry down: the first sys_ frame
            m = _SYSCALL.match(name)
            if m:
                return m.group(1)
        return names[i - 1] if i else "?"
    if any("page_fault" in n for n in names):
        return "page fault"
    return None


def report(rows: list[tuple[str, int, int, list[tuple[str, str]]]],
           helpers: dict[int, str], ingesting: int) -> None:
    """Print the two tables (see the module's docstring); ``helpers`` names the helpers'
    pids, ``ingesting`` is the ingesting thread's id."""
    total = len(rows)
    by_who: collections.Counter[str] = collections.Counter()
    by_lib: collections.Counter[tuple[str, str]] = collections.Counter()
    by_call: collections.Counter[tuple[str, str]] = collections.Counter()
    for comm, pid, tid, frames in rows:
        who = _who(comm, pid, tid, helpers, ingesting)
        by_who[who] += 1
        by_lib[who, _library(frames[0][1]) if frames else "other"] += 1
        call = _syscall(frames) if who not in ("idle", "everything else") else None
        if call is not None and not who.startswith("kernel"):
            by_call[who, call] += 1
    libs = ["libsodium (verify)", "Python", "SQLite", "kernel", "libc", "other"]
    print(f"\n{total:,} samples; % of all CPUs over the sampled time")
    print("| who | all | " + " | ".join(libs) + " |")
    print("|---" * (len(libs) + 2) + "|")
    for who, n in by_who.most_common():
        cells = [f"{100 * by_lib[who, lib] / total:.1f}" for lib in libs]
        print(f"| {who} | **{100 * n / total:.1f}** | " + " | ".join(cells) + " |")
    print("\nkernel time by system call (% of all CPUs; the largest 6 of each)")
    print("| who | system calls |")
    print("|---|---|")
    for who, _n in by_who.most_common():
        calls = sorted(((n, c) for (w, c), n in by_call.items() if w == who), reverse=True)
        if calls:
            print(f"| {who} | " + ", ".join(f"{c} {100 * n / total:.1f}"
                                             for n, c in calls[:6]) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--posts", "-n", type=int, default=20_000)
    parser.add_argument("--authors", "-m", type=int, default=100)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=6.0, help="how long perf samples")
    parser.add_argument("--out", type=Path, default=Path("bench/out/machine"),
                        help="where the data directories go (kept: see bench/README.md)")
    args = parser.parse_args()
    if shutil.which("perf") is None:
        raise SystemExit("needs perf (Debian: apt-get install linux-perf)")
    print(common.machine())
    people = common.authors(args.authors, 1)
    raws = bench_ingest.build(args.posts, people, 1)
    by_feed = sorted(raws, key=lambda raw: raw.split(b".")[1])
    pool = verifyprocs.pool(2)
    helpers = {h.proc.pid: f"helper {k + 1}" for k, h in
               enumerate(pool._helpers if pool is not None else [])}
    run = Path(tempfile.mkdtemp(prefix="run-", dir=_made(args.out)))
    stop, rates = threading.Event(), []

    def ingest() -> None:
        k = 0
        while not stop.is_set():
            rates.append(bench_ingest.ingest_rate(run / f"r{k}", by_feed, people,
                                                  args.batch, True)[0])
            k += 1
    worker = threading.Thread(target=ingest)
    worker.start()
    time.sleep(1.0)  # past the first ingest's set-up
    data = Path(tempfile.mkdtemp()) / "perf.data"
    try:
        recorded = subprocess.run(["perf", "record", "-a", "-e", "cpu-clock", "-F", "1999",
                                   "-g", "-q", "-o", os.fspath(data), "--", "sleep",
                                   str(args.seconds)], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, text=True)
    finally:
        stop.set()
        worker.join()
    if recorded.returncode != 0:
        shutil.rmtree(data.parent)
        raise SystemExit("perf record -a failed (it needs root, or kernel.perf_event_paranoid"
                         f" <= 0): {recorded.stderr.strip()[:300]}")
    load = os.getloadavg()[0]
    rows = samples(data)
    shutil.rmtree(data.parent)
    report(rows, helpers, worker.native_id or 0)
    print(f"\nper-feed ingest, + index, batches of {args.batch}, {args.posts:,} posts: "
          + ", ".join(f"{r:,.0f}" for r in rates) + f" posts/s; load average {load:.2f}")


def _made(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


if __name__ == "__main__":
    main()
