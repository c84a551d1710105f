"""A full first sync of N posts (default 10,000) between two real nodes, against the ingest rate.

Basant's node holds N public posts (made with her key and stored through
``Ingestor.ingest_many`` before her node starts); for each page size a fresh
Ahmed node follows her (``PUT /contacts`` on his admin API, which fetches her
key from her peer) and runs his first full sync with ``POST /sync`` on his
admin API, as a user would: his admin gunicorn worker pulls her feed page by
page from her real gunicorn peer over 127.0.0.1. Both nodes run the Procfile
(admin and peer gunicorn, 2 gthread workers x 4 threads as configured, and
the scheduler) through ``tests/integration/harness.py``.

The page size is the asker's ``max_page_size`` (``app.core.network.sync`` asks for
that many posts per request) bounded by the owner's ``max_page_size``; Ahmed
gets the page size under test and Basant the largest one. Ahmed's
``sync_max_pages`` is raised to cover N posts at that page size so the one sync
fetches everything.

While the sync runs, the VmRSS of every process of both nodes (gunicorn masters
and workers, schedulers) is sampled from ``/proc/<pid>/status``; the table
shows the largest sample, VmHWM (the kernel's peak since the process started)
and the CPU seconds each process spent during the sync. The ingest rate is
``Ingestor.ingest_many`` over the same N posts into a fresh data directory, in
batches of the page size, in this process.

    .venv/bin/python bench/bench_sync.py                  # 10,000 posts; pages 10,100,500,1000
    .venv/bin/python bench/bench_sync.py --page-sizes 500,1000 --profile
"""

from __future__ import annotations

import argparse
import cProfile
import io
import math
import os
import platform
import pstats
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402  (puts the repository root on sys.path)

from app.core.base.datadir import DataDir  # noqa: E402
from app.core.identity.identities import Identities  # noqa: E402
from app.core.network.contacts import Contacts  # noqa: E402
from app.core.posts import codec as posts  # noqa: E402
from app.core.posts.index import Index  # noqa: E402
from app.core.posts.ingest import Ingestor  # noqa: E402
from tests.integration.harness import Node, free_port, stop_all  # noqa: E402

PASSWORD = "bench-password-long"
MiB = 1024 * 1024
TICK = os.sysconf("SC_CLK_TCK")

# --- shared with bench_peer.py and bench_network.py ---------------------------------------


def machine_lines() -> list[str]:
    """nproc, the CPU model, Python, the load average and the command line."""
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return [f"machine: nproc {len(os.sched_getaffinity(0))}, {model}, "
            f"Python {platform.python_version()}, load average {load}",
            f"code: {code_version()}",
            "command: " + " ".join([Path(sys.executable).name, *sys.argv])]


def code_version() -> str:
    """The checkout's commit, and whether app/ or scheduler/ differ from it."""
    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=common.ROOT, capture_output=True,
                                  text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    commit = git("rev-parse", "--short", "HEAD") or "unknown commit"
    dirty = git("status", "--porcelain", "--", "app", "scheduler", "gunicorn.conf.py")
    return commit + (" + uncommitted changes in app/ or scheduler/" if dirty else "")


def new_identity(root: Path, password: str = PASSWORD) -> tuple[DataDir, str]:
    """An initialised data directory with one own identity (Argon2id once, ~0.1 s)."""
    dd = DataDir(root, environ={})
    dd.initialise()
    return dd, Identities(dd).create(password)


def text_posts(seed: bytes, n: int, *, first_time: int, per_second: int = 3,
               rng_seed: int = 1) -> list[bytes]:
    """``n`` public text posts (8-30 words each) signed with ``seed``, oldest first."""
    rng = random.Random(rng_seed)
    return [posts.build_post(seed, {
        "TEXT": " ".join(rng.choices(common.WORDS, k=rng.randint(8, 30))),
        "CREATED_TIME": first_time + i // per_second}) for i in range(n)]


def node_processes(node: Node) -> dict[int, str]:
    """``{pid: label}`` for every live process of a running node (masters, workers)."""
    out: dict[int, str] = {}
    for name in node.procs:
        master = node.main_pid(name)
        workers = [pid for pid in node.group_pids(name) if pid != master]
        out[master] = f"{node.name} {name}" + ("" if name == "scheduler" else " master")
        for n, pid in enumerate(workers, 1):
            out[pid] = f"{node.name} {name} worker {n}"
    return out


def proc_status(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of ``pid`` in bytes; (0, 0) once it has gone."""
    rss = hwm = 0
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"VmRSS:"):
                    rss = int(line.split()[1]) * 1024
                elif line.startswith(b"VmHWM:"):
                    hwm = int(line.split()[1]) * 1024
    except (FileNotFoundError, ProcessLookupError):
        pass
    return rss, hwm


def cpu_split(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds ``pid`` has used ((0, 0) once it has gone)."""
    try:
        fields_ = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0, 0.0
    return int(fields_[11]) / TICK, int(fields_[12]) / TICK


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds ``pid`` has used (0.0 once it has gone)."""
    return sum(cpu_split(pid))


@dataclass
class ProcFigures:
    label: str
    before: int = 0     # VmRSS when sampling started
    peak: int = 0       # largest VmRSS sample
    hwm: int = 0        # VmHWM when sampling stopped
    cpu: float = 0.0    # CPU seconds while sampling


@dataclass
class RssSampler:
    """Samples VmRSS of the given processes every ``interval`` s on a thread."""

    pids: Mapping[int, str]
    interval: float = 0.02
    figures: dict[int, ProcFigures] = field(default_factory=dict)
    peak_total: int = 0
    samples: int = 0

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._cpu0: dict[int, float] = {}
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> RssSampler:
        for pid, label in self.pids.items():
            self.figures[pid] = ProcFigures(label, before=proc_status(pid)[0])
            self._cpu0[pid] = cpu_seconds(pid)
        self._thread.start()
        return self

    def _sample(self) -> None:
        total = 0
        for pid, fig in self.figures.items():
            rss = proc_status(pid)[0]
            fig.peak = max(fig.peak, rss)
            total += rss
        self.peak_total = max(self.peak_total, total)
        self.samples += 1

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.interval)

    def stop(self) -> list[ProcFigures]:
        self._stop.set()
        self._thread.join()
        self._sample()
        for pid, fig in self.figures.items():
            fig.hwm = proc_status(pid)[1]
            fig.cpu = cpu_seconds(pid) - self._cpu0[pid]
        return list(self.figures.values())


def mib(n: int) -> str:
    return f"{n / MiB:.1f}"


def wait_for_log(node: Node, name: str, text: str, timeout: float) -> bool:
    """Wait until ``text`` appears in ``name``'s log (e.g. the scheduler's first sync run)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in node.log(name):
            return True
        time.sleep(0.1)
    return False


def bench_node(root: Path, name: str, **kw: Any) -> Node:
    """A harness :class:`Node` on two fresh free ports.

    ``new_identity`` initialised the directory, so its ``diwan.toml`` names the
    default ports 8888/8889, which the harness would otherwise reuse.
    """
    node = Node(root, name, **kw)
    node.admin_port, node.peer_port = free_port(), free_port()
    return node


def owns_ports(node: Node, fp: str) -> bool:
    """True if both ports are answered by ``node`` itself (it knows ``fp`` and its token works).

    The harness takes the first ``/health`` answer as ready; when another run on the
    machine holds a port it picked, that answer comes from someone else's node.
    """
    try:
        return (node.admin("GET", f"/identities/{fp}", timeout=10).status_code == 200
                and node.peer("GET", f"/identities/{fp}", timeout=10).status_code == 200)
    except OSError:
        return False


def start_owned(node: Node, fp: str, attempts: int = 3) -> Node:
    """Start ``node``; on other ports if the first ones turn out to belong to another node."""
    for _ in range(attempts):
        node.start()
        if owns_ports(node, fp):
            return node
        node.stop()
        node.admin_port, node.peer_port = free_port(), free_port()
    raise SystemExit(f"{node.name}: could not get ports of its own")


def admin_ok(node: Node, method: str, path: str, **kw: Any) -> Any:
    r = node.admin(method, path, **kw)
    if r.status_code not in (200, 201):
        raise SystemExit(f"{node.name}: {method} {path} -> {r.status_code} {r.text[:300]}")
    return r.json() if r.content else None


def follow(node: Node, me: str, other_fp: str, other: Node) -> None:
    admin_ok(node, "PUT", f"/contacts/{other_fp}",
             json={"address": other.peer_url, "identity": me})


# --- this bench ---------------------------------------------------------------------------


@dataclass
class SyncRun:
    page_size: int
    seconds: float
    posts: int
    pages: int
    procs: list[ProcFigures]
    ingest_rate: float


def ingest_rate(root: Path, raws: list[bytes], owner_pub: bytes, owner_fp: str,
                batch: int) -> float:
    """posts/s of ``Ingestor.ingest_many`` in batches of ``batch`` into a fresh directory."""
    dd = DataDir(root, environ={})
    dd.initialise()
    Identities(dd).import_pub(owner_pub, expected_fp=owner_fp)
    index = Index(dd)
    ingestor = Ingestor(dd, index=index)
    started = time.perf_counter()
    for start in range(0, len(raws), batch):
        result = ingestor.ingest_many(raws[start:start + batch], author=owner_fp)
        if result.rejected:
            raise SystemExit(f"ingest rejected posts: {result.rejected[:3]}")
    elapsed = time.perf_counter() - started
    index.close()
    shutil.rmtree(root)
    return len(raws) / elapsed


def make_basant(root: Path, n: int, page_sizes: list[int], workers: int,
                threads: int) -> tuple[Node, str, list[bytes]]:
    """Basant's data directory with ``n`` posts (stored before her node starts)."""
    dd, fp = new_identity(root)
    seed = Identities(dd).open_seed(fp, PASSWORD)
    raws = text_posts(seed, n, first_time=int(time.time()) - 86400)
    ingestor = Ingestor(dd, index=Index(dd))
    for start in range(0, n, 500):
        ingestor.ingest_many(raws[start:start + 500], author=fp)
    settings = {"max_page_size": max(500, *page_sizes), "sync_interval": 86400}
    return bench_node(root, "basant", workers=workers, threads=threads, settings=settings), fp, raws


def first_sync(tmp: Path, basant: Node, b_fp: str, n: int, page_size: int, workers: int,
               threads: int) -> tuple[float, dict[str, Any], list[ProcFigures]]:
    """A fresh Ahmed follows Basant and syncs once through his admin API."""
    root = tmp / f"ahmed-{page_size}"
    _, a_fp = new_identity(root)
    settings = {"max_page_size": page_size, "sync_interval": 86400,
                "sync_max_pages": max(1000, math.ceil(n / page_size) + 2)}
    ahmed = bench_node(root, f"ahmed-{page_size}", workers=workers, threads=threads,
                       settings=settings)
    try:
        start_owned(ahmed, a_fp)
        # the scheduler's first run comes 5 s after it starts: let it pass with no contact
        if not wait_for_log(ahmed, "scheduler", "sync: ", 30):
            raise SystemExit("Ahmed's scheduler did not run its first sync")
        follow(ahmed, a_fp, b_fp, basant)
        sampler = RssSampler({**node_processes(basant), **node_processes(ahmed)}).start()
        started = time.perf_counter()
        out = admin_ok(ahmed, "POST", "/sync", json={"fingerprint": b_fp}, timeout=900)
        seconds = time.perf_counter() - started
        procs = sampler.stop()
        status = out["statuses"][0]
        held = len(list((root / "posts" / b_fp).iterdir()))
        if status["last_error"] or status["posts_last_run"] != n or held != n:
            raise SystemExit(f"the sync did not fetch all {n} posts: {status}, {held} held")
        return seconds, status, procs
    finally:
        ahmed.stop()
        shutil.rmtree(root, ignore_errors=True)


def in_process_ahmed(tmp: Path, name: str, basant: Node, b_fp: str, page_size: int,
                     n: int) -> tuple[DataDir, Path]:
    """A data directory (no processes) whose own identity follows Basant."""
    root = tmp / name
    _, a_fp = new_identity(root)
    dd = DataDir(root, {"max_page_size": page_size,
                        "sync_max_pages": max(1000, math.ceil(n / page_size) + 2)}, environ={})
    Contacts(dd).add(b_fp, basant.peer_url, a_fp)
    return dd, root


class _Timed:
    """Wraps methods to add up the seconds spent in them (from any thread)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._undo: list[tuple[Any, str, Any]] = []
        self._lock = threading.Lock()

    def wrap(self, owner: Any, name: str, label: str) -> None:
        original = getattr(owner, name)

        def timed(*args: Any, **kw: Any) -> Any:
            started = time.perf_counter()
            try:
                return original(*args, **kw)
            finally:
                with self._lock:
                    self.seconds[label] = self.seconds.get(label, 0.0) + (
                        time.perf_counter() - started)

        setattr(owner, name, timed)
        self._undo.append((owner, name, original))

    def restore(self) -> None:
        for owner, name, original in reversed(self._undo):
            setattr(owner, name, original)


def profile_in_process(tmp: Path, basant: Node, b_fp: str, page_size: int, n: int) -> str:
    """``sync_contact`` in this process against Basant's real peer: where the time goes.

    First with the main steps timed (no profiler): ingesting pages in the
    calling thread, fetching pages on the fetch thread (overlapped with the
    ingest), and the rest of the calling thread's time (waiting for a page,
    cursors, status); then again under cProfile (the calling thread only).
    """
    from app.core.network import sync

    dd, root = in_process_ahmed(tmp, "ahmed-timed", basant, b_fp, page_size, n)
    timer = _Timed()
    timer.wrap(Ingestor, "ingest_many", "Ingestor.ingest_many (calling thread)")
    timer.wrap(sync._Run, "page", "_Run.page: ask, read, open a page (fetch thread)")
    started = time.perf_counter()
    try:
        status = sync.sync_contact(dd, b_fp)
    finally:
        timer.restore()
    seconds = time.perf_counter() - started
    Index(dd).close()
    shutil.rmtree(root, ignore_errors=True)
    lines = [f"in-process sync_contact, page size {page_size}: {seconds:.2f} s, "
             f"{status.posts_last_run} posts ({status.posts_last_run / seconds:,.0f}/s), "
             f"error {status.last_error}"]
    lines += [f"    {label}: {s:.2f} s" for label, s in timer.seconds.items()]
    ingest = timer.seconds.get("Ingestor.ingest_many (calling thread)", 0.0)
    lines.append(f"    the rest of the calling thread (waiting for pages, cursors, status): "
                 f"{seconds - ingest:.2f} s")
    dd, root = in_process_ahmed(tmp, "ahmed-profiled", basant, b_fp, page_size, n)
    prof = cProfile.Profile()
    prof.enable()
    sync.sync_contact(dd, b_fp)
    prof.disable()
    Index(dd).close()
    shutil.rmtree(root, ignore_errors=True)
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(25)
    lines += ["", "the same under cProfile (calling thread; tottime order):",
              *out.getvalue().splitlines()[:52]]
    return "\n".join(lines)


def proc_rows(runs: Iterable[SyncRun]) -> list[list[str]]:
    rows = []
    for run in runs:
        for p in sorted(run.procs, key=lambda p: p.label):
            flag = "" if max(p.peak, p.hwm) < 100 * MiB else " (over 100)"
            rows.append([str(run.page_size), p.label, mib(p.before), mib(p.peak) + flag,
                         mib(p.hwm), f"{p.cpu:.2f}"])
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--posts", "-n", type=int, default=10_000)
    ap.add_argument("--page-sizes", default="10,100,500,1000",
                    help="comma-separated page sizes, one fresh Ahmed each")
    ap.add_argument("--workers", type=int, default=2, help="gunicorn workers per app (node "
                    "default 2)")
    ap.add_argument("--threads", type=int, default=4, help="threads per worker (default 4)")
    ap.add_argument("--profile", action="store_true",
                    help="also run sync_contact in this process under cProfile (largest page)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = ap.parse_args()
    page_sizes = [int(x) for x in args.page_sizes.split(",") if x.strip()]
    for line in machine_lines():
        print(line, flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="diwan-bench-sync-"))
    nodes: list[Node] = []
    runs: list[SyncRun] = []
    profile = ""
    try:
        t = time.perf_counter()
        basant, b_fp, raws = make_basant(tmp / "basant", args.posts, page_sizes,
                                         args.workers, args.threads)
        nodes.append(basant)
        start_owned(basant, b_fp)
        print(f"Basant: {args.posts:,} posts made and stored in "
              f"{time.perf_counter() - t:.1f} s; her node is up", flush=True)
        b_pub = Identities(DataDir(basant.root, environ={})).pub_document(b_fp)
        for ps in page_sizes:
            rate = ingest_rate(tmp / f"ingest-{ps}", raws, b_pub, b_fp, ps)
            seconds, status, procs = first_sync(tmp, basant, b_fp, args.posts, ps,
                                                args.workers, args.threads)
            runs.append(SyncRun(ps, seconds, status["posts_last_run"],
                                status["pages_last_run"], procs, rate))
            print(f"  page size {ps}: {seconds:.2f} s", flush=True)
        if args.profile:
            profile = profile_in_process(tmp, basant, b_fp, max(page_sizes), args.posts)
    finally:
        stop_all(nodes)
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    print(f"\nfirst full sync of {args.posts:,} posts, POST /sync on Ahmed's admin API "
          f"(gunicorn {args.workers} gthread workers x {args.threads} threads per app); "
          f"load average now {os.getloadavg()[0]:.2f}")
    print(common.table(
        ["page size", "pages", "sync wall time", "sync posts/s", "ingest_many posts/s "
         "(same batches)", "sync / ingest", "max RSS, any process"],
        [[str(r.page_size), str(r.pages), f"{r.seconds:.2f} s", f"{r.posts / r.seconds:,.0f}",
          f"{r.ingest_rate:,.0f}", f"{r.posts / r.seconds / r.ingest_rate:.2f}",
          f"{max(max(p.peak, p.hwm) for p in r.procs) / MiB:.1f} MiB"] for r in runs]))
    print("\nper process during the sync (MiB; VmRSS when the sync started, largest sample "
          "every 20 ms, VmHWM afterwards; CPU seconds used during the sync)")
    print(common.table(["page size", "process", "RSS before", "RSS max", "VmHWM", "CPU s"],
                       proc_rows(runs)))
    if profile:
        print("\n" + profile)


if __name__ == "__main__":
    main()
