"""Where the whole machine's CPU goes during a per-feed ingest: every process, the kernel too.

``bench_phases.py`` follows the ingesting thread and ``--profile`` samples Python frames;
neither sees the helpers' system calls, the kernel's writeback threads or the cores left
idle. This bench runs per-feed ingests with the index (``bench_ingest.ingest_rate``:
``ingest_batches``) one after another on a thread while ``perf record -a -e cpu-clock``
samples every CPU at :data:`HZ` (a software clock: no hardware counters needed), then
prints:

1. the machine's time by who (the ingesting thread, the other threads of its process:
   the per-batch flush threads and the waiting main thread; each signature-check helper;
   the kernel's writeback workers; anything else) and by what (libsodium, the Python
   interpreter, SQLite, the kernel, libc, other), in % of all CPUs over the sampled
   wall time. A CPU with nothing to run is not sampled at all on a tickless kernel, so
   the shares are of ``CPUs x seconds x HZ`` expected samples, and idle is what the
   samples do not account for; the idle share ``/proc/stat`` counted over the same
   seconds is printed beside it as a check;
2. the kernel's time in each of those processes by system call (the ``sys_`` frame
   below ``do_syscall_64``), and page faults;
3. the ingest rates measured meanwhile (posts/s) and the load average;
4. for the ingesting thread and each helper, its share of the sampled time on a CPU,
   waiting for one (runnable, another thread had it) and blocked (``/proc/.../schedstat``),
   and its context switches. ``--helper-priority`` (a nice value, or ``idle`` for
   ``SCHED_IDLE``) runs the helpers below the ingesting thread, to see whether its waiting
   for a CPU costs the rate.

Needs ``perf`` (Debian's ``linux-perf``) and the right to sample every CPU (root, or
``kernel.perf_event_paranoid`` <= 0). The data directories go under ``--out`` and are
deleted at the end unless ``--keep`` (:data:`common.RECENTLY_DELETED`: leave 5 minutes
before the next bench). bench/README.md ("Issue 14, stop 29") has a run.

    .venv/bin/python bench/bench_machine.py --posts 20000 --seconds 6
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import shutil
import statistics
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

HZ = 1999  # samples a second on each busy CPU
HELPERS = 2  # signature-check helper processes (bench_ingest.ingest_rate's default)
Sample = tuple[str, int, int, list[tuple[str, str]]]  # comm, pid, tid, [(symbol, dso)]
_LIBS = ["libsodium (verify)", "Python", "SQLite", "kernel", "libc", "other"]
_SYSCALL = re.compile(r"^(?:__x64_sys_|__do_sys_|__se_sys_|ksys_)(\w+)$")
_RENAMED = {"vm_mmap_pgoff": "mmap"}


def library(dso: str) -> str:
    """Which of :data:`_LIBS` the shared object or executable at path ``dso`` is."""
    base = os.path.basename(dso)
    if dso == "[kernel.kallsyms]":
        return "kernel"
    if "sodium" in base:
        return "libsodium (verify)"
    if "sqlite" in base:  # libsqlite3 and the _sqlite3 binding
        return "SQLite"
    if base.startswith(("libpython", "python3")):
        return "Python"
    if base.startswith("libc.so") or base.startswith("libc-"):
        return "libc"
    return "other"


def samples(data: Path) -> list[Sample]:
    """The samples of ``perf.data`` at ``data``, each with its call chain, leaf first.
    Raises ``SystemExit`` with perf's message if ``perf script`` fails."""
    done = subprocess.run(["perf", "script", "-i", os.fspath(data), "-F",
                           "comm,pid,tid,ip,sym,dso"], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"perf script failed: {done.stderr.strip()[:300]}")
    out: list[Sample] = []
    for block in done.stdout.split("\n\n"):
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


def who(comm: str, pid: int, tid: int, helpers: dict[int, str], ingesting: int) -> str:
    """The row a sample of thread ``tid`` of process ``pid`` (named ``comm``) counts in;
    ``helpers`` names the helpers' pids, ``ingesting`` is the ingesting thread's id."""
    if pid == os.getpid():
        return "ingesting thread" if tid == ingesting else "its process's other threads"
    if pid in helpers:
        return helpers[pid]
    if comm == "swapper":
        return "idle (sampled)"
    if comm.startswith("kworker"):
        return "kernel workers (writeback)"
    return "everything else"


def syscall(frames: list[tuple[str, str]]) -> str | None:
    """The system call a call chain (leaf first) is in, ``page fault``, or None (user
    code, or the kernel for another reason)."""
    names = [f[0] for f in frames]
    if "do_syscall_64" in names:
        below = names[:names.index("do_syscall_64")]
        for name in reversed(below):  # from the entry down: the first sys_ frame
            if name in _RENAMED:
                return _RENAMED[name]
            m = _SYSCALL.match(name)
            if m:
                return m.group(1)
        return "system call entry or exit"
    if any("page_fault" in n for n in names):
        return "page fault"
    return None


def report(rows: list[Sample], helpers: dict[int, str], ingesting: int,
           expected: float, stat_idle: float) -> None:
    """Print the tables (see the module's docstring): ``expected`` samples in all
    (CPUs x seconds x HZ), ``stat_idle`` the idle share /proc/stat counted."""
    by_who: collections.Counter[str] = collections.Counter()
    by_lib: collections.Counter[tuple[str, str]] = collections.Counter()
    by_call: collections.Counter[tuple[str, str]] = collections.Counter()
    for comm, pid, tid, frames in rows:
        row = who(comm, pid, tid, helpers, ingesting)
        by_who[row] += 1
        by_lib[row, library(frames[0][1]) if frames else "other"] += 1
        call = syscall(frames)
        if call is not None and row not in ("idle (sampled)", "everything else") \
                and not row.startswith("kernel"):
            by_call[row, call] += 1
    busy = sum(n for row, n in by_who.items() if row != "idle (sampled)")
    print(f"\n{len(rows):,} samples of {expected:,.0f} expected ({HZ} a second on each CPU;"
          " an idle CPU is mostly not sampled); % of all CPUs over the sampled time")
    print("| who | all | " + " | ".join(_LIBS) + " |")
    print("|---" * (len(_LIBS) + 2) + "|")
    for row, n in by_who.most_common():
        if row == "idle (sampled)":
            continue
        cells = [f"{100 * by_lib[row, lib] / expected:.1f}" for lib in _LIBS]
        print(f"| {row} | **{100 * n / expected:.1f}** | " + " | ".join(cells) + " |")
    idle = max(0.0, 1 - busy / expected)
    print(f"| idle (not accounted for by busy samples) | **{100 * idle:.1f}** |"
          + " |" * len(_LIBS))
    print(f"\nidle by /proc/stat over the same seconds: {100 * stat_idle:.1f} %")
    print("\nkernel time by system call (% of all CPUs; the largest 6 of each)")
    print("| who | system calls |")
    print("|---|---|")
    for row, _n in by_who.most_common():
        calls = sorted(((n, c) for (w, c), n in by_call.items() if w == row), reverse=True)
        if calls:
            print(f"| {row} | " + ", ".join(f"{c} {100 * n / expected:.1f}"
                                             for n, c in calls[:6]) + " |")


def sched(path: str) -> tuple[int, int, int, int]:
    """(ns on a CPU, ns runnable but waiting for one, voluntary and involuntary context
    switches) of the thread or process at ``path`` (``/proc/<pid>[/task/<tid>]``)."""
    on_cpu, waiting = common.schedstat(path)
    status = Path(path, "status").read_text()
    switches = [int(status.split(f"\n{k}_ctxt_switches:")[1].split()[0])
                for k in ("voluntary", "nonvoluntary")]
    return on_cpu, waiting, switches[0], switches[1]


def sched_table(before: dict[str, tuple[int, int, int, int]],
                after: dict[str, tuple[int, int, int, int]], seconds: float) -> None:
    """Print, for each thread or process, its share of ``seconds`` on a CPU, waiting for
    one (runnable: another thread had it) and neither (blocked: waiting for a pipe, a
    lock, the disk), and its context switches a second."""
    print("\nwho: share of the sampled time on a CPU, runnable and waiting for a CPU, blocked;"
          " context switches a second (voluntary: it blocked; involuntary: preempted)")
    print("| who | on a CPU | waiting for a CPU | blocked | voluntary/s | involuntary/s |")
    print("|---|---|---|---|---|---|")
    for name, start in before.items():
        d = [b - a for a, b in zip(start, after[name], strict=True)]
        run, wait = d[0] / 1e9 / seconds, d[1] / 1e9 / seconds
        print(f"| {name} | {run:.2f} | {wait:.2f} | {max(0.0, 1 - run - wait):.2f} | "
              f"{d[2] / seconds:,.0f} | {d[3] / seconds:,.0f} |")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0] + " Needs perf and root (or "
        "kernel.perf_event_paranoid <= 0).")
    parser.add_argument("--posts", "-n", type=int, default=20_000,
                        help="posts a per-feed ingest stores (at least --batch)")
    parser.add_argument("--authors", "-m", type=int, default=100,
                        help="authors the posts are spread over")
    parser.add_argument("--batch", type=int, default=500, help="posts a durable batch")
    parser.add_argument("--seconds", type=float, default=6.0, help="how long perf samples")
    parser.add_argument("--out", type=Path, default=common.OUT / f"machine-{os.getpid()}",
                        help="where the data directories go")
    parser.add_argument("--keep", action="store_true", help="keep the data directories")
    parser.add_argument("--helper-priority", choices=["0", "5", "10", "19", "idle"],
                        default="0", help="the helpers' nice value, or SCHED_IDLE (an "
                        "experiment: does the ingesting thread waiting for a CPU matter?)")
    args = parser.parse_args()
    if not args.seconds > 0 or args.batch < 1 or args.posts < args.batch:
        parser.error("needs --seconds > 0 and --posts >= --batch >= 1")
    if shutil.which("perf") is None:
        raise SystemExit("needs perf (Debian: apt-get install linux-perf)")
    print(common.machine())
    people = common.authors(args.authors, 1)
    by_feed = sorted(bench_ingest.build(args.posts, people, 1),
                     key=lambda raw: raw.split(b".")[1])
    pool = verifyprocs.pool(HELPERS)
    helpers = {pid: f"helper {k + 1}" for k, pid in
               enumerate(pool.pids() if pool is not None else [])}
    for pid in helpers:
        if args.helper_priority == "idle":
            os.sched_setscheduler(pid, os.SCHED_IDLE, os.sched_param(0))
        else:
            os.setpriority(os.PRIO_PROCESS, pid, int(args.helper_priority))
    stop, rates, failed = threading.Event(), list[float](), list[BaseException]()

    def ingest() -> None:
        k = 0
        try:
            while not stop.is_set():
                rates.append(bench_ingest.ingest_rate(args.out / f"r{k}", by_feed, people,
                                                      args.batch, True, HELPERS)[0])
                k += 1
        except BaseException as exc:  # reported by the main thread
            failed.append(exc)
    worker = threading.Thread(target=ingest, daemon=True)
    try:
        with tempfile.TemporaryDirectory() as scratch:
            worker.start()
            time.sleep(1.0)  # past the first ingest's set-up
            data = Path(scratch) / "perf.data"
            threads = {"ingesting thread": f"/proc/self/task/{worker.native_id}",
                       **{name: f"/proc/{pid}" for pid, name in helpers.items()}}
            before, ran = common.cpu_jiffies(), {k: sched(v) for k, v in threads.items()}
            started = time.perf_counter()
            recorded = subprocess.run(
                ["perf", "record", "-a", "-e", "cpu-clock", "-F", str(HZ), "-g", "-q",
                 "-o", os.fspath(data), "--", "sleep", str(args.seconds)],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            after, ran_after = common.cpu_jiffies(), {k: sched(v) for k, v in threads.items()}
            wall = time.perf_counter() - started
            stop.set()
            worker.join()
            if failed:
                raise SystemExit(f"the ingest failed: {failed[0]!r}")
            if recorded.returncode != 0:
                raise SystemExit(f"perf record -a failed: {recorded.stderr.strip()[:300]}")
            rows = samples(data)
    finally:
        stop.set()
        if worker.is_alive():
            worker.join()
        if not args.keep:
            shutil.rmtree(args.out, ignore_errors=True)
    load = os.getloadavg()[0]
    ticks = [b - a for a, b in zip(before, after, strict=True)]
    stat_idle = (ticks[3] + ticks[4]) / max(1, sum(ticks))  # idle and iowait
    # perf samples while its ``sleep`` runs: ``seconds``, not the wall time around it
    report(rows, helpers, worker.native_id or 0, (os.cpu_count() or 1) * args.seconds * HZ,
           stat_idle)
    print(f"\nper-feed ingests, + index, batches of {args.batch}, {args.posts:,} posts: "
          f"{len(rates)} runs, {min(rates):,.0f} / {statistics.median(rates):,.0f} / "
          f"{max(rates):,.0f} posts/s (least / median / most); load average {load:.2f}")
    sched_table(ran, ran_after, wall)
    print(f"helpers' priority: {args.helper_priority}")
    print(f"data directories: {args.out}" + (" (kept)" if args.keep else " (deleted)"))


if __name__ == "__main__":
    main()
