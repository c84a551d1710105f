"""A first sync of N posts (default 10,000) between two real nodes, against ingest_many.

Basant's node holds N public posts (made with her key and stored through
``Ingestor.ingest_many`` before her node starts); for each run a fresh Ahmed
node follows her (``PUT /contacts`` on his admin API, which fetches her key
from her peer) and runs his first sync with ``POST /sync`` on his admin API,
as a user would: his admin gunicorn worker pulls her feed page by page from
her real gunicorn peer over 127.0.0.1. Both nodes run the Procfile (admin and
peer gunicorn, 2 gthread workers x 4 threads as configured, and the
scheduler) through ``tests/integration/harness.py``. The page size is Ahmed's
``sync_page_size`` (default 500, the node's default; his ``max_page_size`` is set to it
too).

In each of ``--rounds`` runs (medians printed, each value with the 1-minute
load average right after it), in this order so that the baselines share the
results' noise: raw PyNaCl verify of the same posts on one core and on two
forked processes, the disk's create+write rate with one ``syncfs`` per page,
``Ingestor.ingest_many`` of the same posts in batches of the page size into
a fresh data directory (in this process), then the first sync. The ratio
sync time / ingest_many time is issue 14's target (<= 1.3). While the sync
runs, the VmRSS of every process of both nodes (gunicorn masters and workers,
schedulers, any helper process a worker starts) is sampled every 20 ms; the
table shows, per process, the largest sample, VmHWM and CPU seconds over the
runs (target: every process < 60 MiB).

Then the first flush of a batch: one page of new files made durable as the
batch writer does, by one ``syncfs`` or by an ``fsync`` of each file, on a
clean file system and after ``--dirty`` MiB of unrelated data were written
(not flushed) next to it. ``--profile [FILE]`` runs one more sync with py-spy
(``pip install -e '.[dev]'``) sampling Ahmed's admin workers and prints where
the thread that ran the sync spent its wall-clock time.

    .venv/bin/python bench/bench_sync.py                  # 10,000 posts, pages of 1000, 3 runs
    .venv/bin/python bench/bench_sync.py --page-sizes 100,1000 --profile
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import os
import platform
import random
import shutil
import signal
import statistics
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
import nacl.signing  # noqa: E402  (the raw baseline; the app itself only uses app.core.base.crypto)

from app.core.base import flush  # noqa: E402
from app.core.base.config import DEFAULTS  # noqa: E402
from app.core.base.crypto import CTX_POST  # noqa: E402
from app.core.base.datadir import DataDir  # noqa: E402
from app.core.base.encoding import b64d  # noqa: E402
from app.core.base.fsio import BatchWriter  # noqa: E402
from app.core.identity.identities import Identities  # noqa: E402
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


def median(values: Iterable[float]) -> float:
    return statistics.median(list(values))


def load1() -> float:
    return os.getloadavg()[0]


@dataclass
class Figure:
    """One measured value and the 1-minute load average right after it."""

    value: float
    load: float


def measured(value: float) -> Figure:
    return Figure(value, load1())


def verify_jobs(raws: list[bytes], key: bytes) -> list[tuple[bytes, bytes]]:
    """(message, signature) of each post: the signature over ``CTX_POST + P1``."""
    jobs = []
    for raw in raws:
        p1, _fp, sig = raw.split(b".")
        jobs.append((CTX_POST + p1, b64d(sig)))
    return jobs


def one_core_verify_rate(raws: list[bytes], key: bytes) -> float:
    """Raw PyNaCl ``VerifyKey.verify`` of every post in a tight loop, one core."""
    verify_key, jobs = nacl.signing.VerifyKey(key), verify_jobs(raws, key)
    started = time.perf_counter()
    for message, sig in jobs:
        verify_key.verify(message, sig)
    return len(jobs) / (time.perf_counter() - started)


_share: tuple[list[bytes], bytes] = ([], b"")


def _verify_share(job: tuple[int, int]) -> float:
    first, step = job
    raws, key = _share
    verify_key, jobs = nacl.signing.VerifyKey(key), verify_jobs(raws[first::step], key)
    started = time.perf_counter()
    for message, sig in jobs:
        verify_key.verify(message, sig)
    return time.perf_counter() - started


def two_process_verify_rate(raws: list[bytes], key: bytes) -> float:
    """The same on two forked processes at once (every post once): the machine's cores."""
    global _share
    _share = (raws, key)
    with multiprocessing.get_context("fork").Pool(2) as pool:
        seconds = pool.map(_verify_share, [(0, 2), (1, 2)])
    return len(raws) / max(seconds)


def ingest_seconds(root: Path, raws: list[bytes], owner_pub: bytes, owner_fp: str,
                   batch: int) -> float:
    """Seconds of ``Ingestor.ingest_many`` in batches of ``batch`` into a fresh directory."""
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
    os.sync()  # not timed: its writes are committed now, not in the sync measured next;
    #            the files stay until the bench ends (common.RECENTLY_DELETED)
    return elapsed


def ingest_rate(root: Path, raws: list[bytes], owner_pub: bytes, owner_fp: str,
                batch: int) -> float:
    """posts/s of ``Ingestor.ingest_many`` in batches of ``batch`` into a fresh directory."""
    return len(raws) / ingest_seconds(root, raws, owner_pub, owner_fp, batch)


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


def all_processes(*nodes: Node) -> dict[int, str]:
    """Every live process of ``nodes`` (as :func:`node_processes`), helper processes a
    worker started (e.g. signature checkers) labelled by their command."""
    out: dict[int, str] = {}
    for node in nodes:
        for pid, label in node_processes(node).items():
            try:
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if "worker" in label and not any(b"gunicorn" in part for part in cmd):
                label = f"{node.name} helper ({Path(cmd[0].decode(errors='replace')).name})"
            out[pid] = label
    return out


class Sampler(RssSampler):
    """:class:`RssSampler` that also picks up processes started during the sync."""

    def __init__(self, nodes: list[Node], interval: float = 0.02) -> None:
        super().__init__(all_processes(*nodes), interval)
        self.nodes = nodes
        self._last_look = 0.0

    def _sample(self) -> None:
        if time.monotonic() - self._last_look > 0.25:
            self._last_look = time.monotonic()
            for pid, label in all_processes(*self.nodes).items():
                if pid not in self.figures:
                    self.figures[pid] = ProcFigures(label)
                    self._cpu0[pid] = 0.0
        super()._sample()


@dataclass
class SyncRun:
    page_size: int
    seconds: float
    load: float
    posts: int
    pages: int
    procs: list[ProcFigures]


def start_ahmed(tmp: Path, folder: str, n: int, page_size: int, workers: int,
                threads: int, checkout: Path | None = None) -> tuple[Node, str]:
    """A fresh Ahmed node in ``tmp/folder`` (up, its scheduler's first run passed) asking
    ``page_size`` posts a page; its processes run the code of ``checkout`` if given (another
    clone or worktree of the repository), else this one's."""
    _, a_fp = new_identity(tmp / folder)
    settings = {"max_page_size": page_size, "sync_page_size": page_size, "sync_interval": 86400,
                "sync_max_pages": max(1000, math.ceil(n / page_size) + 2)}
    other: dict[str, Any] = {}
    if checkout is not None:
        other = {"env": {"PYTHONPATH": str(checkout), "DIWAN_ROOT": str(checkout)},
                 "procfile": checkout / "app" / "run" / "Procfile"}
        known = (checkout / "app" / "core" / "base" / "config.py").read_text()
        toml = tmp / folder / "diwan.toml"  # only the settings that code knows
        toml.write_text("".join(line + "\n" for line in toml.read_text().splitlines()
                                if "=" not in line or f'"{line.split("=")[0].strip()}"'
                                in known))
    ahmed = bench_node(tmp / folder, "ahmed", workers=workers, threads=threads,
                       settings=settings, **other)
    start_owned(ahmed, a_fp)
    # the scheduler's first run comes 5 s after it starts: let it pass with no contact
    if not wait_for_log(ahmed, "scheduler", "sync: ", 30):
        ahmed.stop()
        raise SystemExit("Ahmed's scheduler did not run its first sync")
    return ahmed, a_fp


def sync_once(ahmed: Node, a_fp: str, basant: Node, b_fp: str, n: int, page_size: int
              ) -> SyncRun:
    """Ahmed follows Basant and runs his first sync through ``POST /sync``; checked."""
    follow(ahmed, a_fp, b_fp, basant)
    sampler = Sampler([basant, ahmed]).start()
    started = time.perf_counter()
    out = admin_ok(ahmed, "POST", "/sync", json={"fingerprint": b_fp}, timeout=900)
    seconds = time.perf_counter() - started
    load = load1()
    procs = sampler.stop()
    status = out["statuses"][0]
    held = len(list((ahmed.root / "posts" / b_fp).iterdir()))
    if status["last_error"] or status["posts_last_run"] != n or held != n:
        raise SystemExit(f"the sync did not fetch all {n} posts: {status}, {held} held")
    return SyncRun(page_size, seconds, load, n, status["pages_last_run"], procs)


def first_sync(tmp: Path, basant: Node, b_fp: str, n: int, page_size: int, workers: int,
               threads: int, folder: str = "ahmed", checkout: Path | None = None) -> SyncRun:
    """A fresh Ahmed (in ``tmp/folder``, running ``checkout``'s code if given) follows
    Basant and syncs once through his admin API."""
    ahmed, a_fp = start_ahmed(tmp, folder, n, page_size, workers, threads, checkout)
    try:
        return sync_once(ahmed, a_fp, basant, b_fp, n, page_size)
    finally:
        ahmed.stop()
        os.sync()  # as in ingest_seconds; the files stay until the bench ends


# the first flush of a batch ------------------------------------------------------------------

def dirty_kib() -> int:
    """Dirty + Writeback of the whole machine, KiB (/proc/meminfo)."""
    total = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith(("Dirty:", "Writeback:")):
            total += int(line.split()[1])
    return total


def unrelated_dirty(root: Path, mib_: int) -> Path:
    """A file of ``mib_`` MiB written (not flushed) next to the data: another program's data."""
    path = root / "unrelated.bin"
    chunk = os.urandom(MiB)
    with open(path, "wb") as f:
        for _ in range(mib_):
            f.write(chunk)
    return path


def first_flush(root: Path, raws: list[bytes], how: str, dirty_mib: int
                ) -> tuple[float, int, str]:
    """Seconds to make one batch of new files (the posts ``raws``) durable the way the
    batch writer does (unnamed files, flush, ``linkat``, directory fsync) with ``how``:
    ``syncfs`` (one flush of the file system), ``fsync`` (each file, on 8 threads) or
    ``auto`` (``base/flush.py``'s choice), after ``dirty_mib`` MiB of unrelated data were
    written in the same file system; the machine's dirty KiB just before the flush, and
    the way taken."""
    folder = Path(tempfile.mkdtemp(dir=root, prefix="flush-"))
    os.sync()  # start from a clean file system
    junk = unrelated_dirty(root, dirty_mib) if dirty_mib else None
    if how == "auto":  # base/flush.py's choice with the default setting, as ingest makes it
        how = "syncfs" if flush.syncfs_is_cheap(len(raws), DEFAULTS["flush_dirty_per_file"]) \
            else "fsync"
    writer = BatchWriter(folder, fsync_each=how == "fsync")  # the ingest's own writer
    for i, raw in enumerate(raws):
        writer.add(folder / f"p{i}", raw)  # unnamed files until the commit
    dirty = dirty_kib()
    started = time.perf_counter()
    writer.commit()  # flush (one syncfs, or an fsync each), linkat, directory fsync
    seconds = time.perf_counter() - started  # the files stay (common.RECENTLY_DELETED)
    if junk is not None:
        junk.unlink()
    return seconds, dirty, how


# profile of the receiving worker ----------------------------------------------------------------

# (label, frame names that mark it); a sample goes to the first label found from the
# innermost frame outwards. Names of functions only, so renamed internals fall in "other".
CATEGORIES = [
    ("create the post files (open an unnamed file)", ["_open_unnamed"]),
    ("write a post file, set its time", ["_write_all"]),
    ("name the files (linkat)", ["link_fd", "rename_noreplace"]),
    ("flush (syncfs)", ["syncfs"]),
    ("directory fsync", ["fsync_dir"]),
    ("index inserts", ["add_many", "Index.", "indexbulk"]),
    ("deletion records check", ["screen", "doomed", "remove_files"]),
    ("wait for signature checks (threads or helper processes)", ["Future.result", "Ticket.",
                                                                "verifyprocs"]),
    ("parse and check posts (own thread)", ["Ingestor._verify", "Ingestor._prepare",
                                           "split_post", "parse_payload", "check_values"]),
    ("wait for the next page", ["Walk._get"]),
    ("ingest, other", ["ingest_many"]),
]


def py_spy() -> str | None:
    """The py-spy executable of this virtualenv (``pip install -e '.[dev]'``), if any."""
    exe = Path(sys.prefix) / "bin" / "py-spy"
    return str(exe) if exe.exists() else shutil.which("py-spy")


def profile_sync(tmp: Path, basant: Node, b_fp: str, n: int, page_size: int, workers: int,
                 threads: int, out: Path) -> str:
    """One more first sync with py-spy sampling Ahmed's admin workers (wall clock, idle
    included, every thread, 200 Hz, not pausing them): the collapsed stacks to ``out``,
    and the breakdown of the thread that ran the sync."""
    exe = py_spy()
    if exe is None:
        raise SystemExit("--profile needs py-spy: .venv/bin/pip install -e '.[dev]'")
    ahmed, a_fp = start_ahmed(tmp, "ahmed-profiled", n, page_size, workers, threads)
    try:
        workers_ = [pid for pid, label in node_processes(ahmed).items()
                    if "admin worker" in label]
        files = [out.with_suffix(f".{pid}.txt") for pid in workers_]
        spies = [subprocess.Popen([exe, "record", "--pid", str(pid), "--rate", "200", "--idle",
                                   "--threads", "--nonblocking", "--format", "raw", "-o",
                                   str(f)], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
                 for pid, f in zip(workers_, files, strict=True)]
        time.sleep(2)  # py-spy attached
        run = sync_once(ahmed, a_fp, basant, b_fp, n, page_size)
        for spy in spies:
            spy.send_signal(signal.SIGINT)
        for spy in spies:
            spy.wait(timeout=60)
    finally:
        ahmed.stop()
        shutil.rmtree(ahmed.root, ignore_errors=True)
    stacks = [line for f in files if f.exists() for line in f.read_text().splitlines()]
    out.write_text("\n".join(stacks) + "\n")
    for f in files:
        f.unlink(missing_ok=True)
    return (f"profiled sync: {run.seconds:.2f} s (load {run.load:.2f}); py-spy stacks of "
            f"Ahmed's admin workers: {out}\n" + breakdown(stacks))


def breakdown(stacks: list[str]) -> str:
    """The sync thread's samples by :data:`CATEGORIES`, and the busiest other threads."""
    threads: dict[str, int] = {}
    syncing: list[tuple[list[str], int]] = []
    for line in stacks:
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        threads[frames[0]] = threads.get(frames[0], 0) + int(count)
        if any(f.startswith("_sync_one ") for f in frames):
            syncing.append((frames, int(count)))
    total = sum(c for _, c in syncing) or 1
    shares: dict[str, int] = {}
    for frames, count in syncing:
        label = "other (cursor, status, run set-up)"
        for frame in reversed(frames):
            found = next((lab for lab, marks in CATEGORIES
                          if any(m in frame for m in marks)), None)
            if found:
                label = found
                break
        shares[label] = shares.get(label, 0) + count
    rows = [[label, str(c), f"{100 * c / total:.1f} %"]
            for label, c in sorted(shares.items(), key=lambda kv: -kv[1])]
    lines = [f"the thread that ran the sync: {total} samples (5 ms each, wall clock)",
             common.table(["where", "samples", "share"], rows),
             "samples per thread of the worker (idle included):"]
    lines += [f"    {c:6d}  {name}" for name, c in sorted(threads.items(), key=lambda kv: -kv[1])
              if c > 20]
    return "\n".join(lines)


# the run ----------------------------------------------------------------------------------------

def peak_rss(run: SyncRun) -> int:
    """The largest RSS (sampled or VmHWM) of any process during ``run``, bytes."""
    return max(max(p.peak, p.hwm) for p in run.procs)


def proc_rows(runs: Iterable[SyncRun]) -> list[list[str]]:
    """Per process, the largest figures over every run of a page size."""
    worst: dict[tuple[int, str], ProcFigures] = {}
    for run in runs:
        for p in run.procs:
            key = (run.page_size, p.label)
            w = worst.setdefault(key, ProcFigures(p.label, p.before))
            w.before, w.peak = max(w.before, p.before), max(w.peak, p.peak)
            w.hwm, w.cpu = max(w.hwm, p.hwm), max(w.cpu, p.cpu)
    rows = []
    for (size, _), p in sorted(worst.items()):
        flag = "" if max(p.peak, p.hwm) < 60 * MiB else " (over 60)"
        rows.append([str(size), p.label, mib(p.before), mib(p.peak) + flag, mib(p.hwm),
                     f"{p.cpu:.2f}"])
    return rows


def fig(figures: list[Figure], fmt: str) -> str:
    """The median and each run's value with the load average after it."""
    each = ", ".join(f"{fmt.format(f.value)} @{f.load:.1f}" for f in figures)
    return f"{fmt.format(median(f.value for f in figures))} ({each})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--posts", "-n", type=int, default=10_000)
    ap.add_argument("--page-sizes", default="500",
                    help="comma-separated page sizes, one fresh Ahmed per run (default 500, "
                    "the default sync_page_size)")
    ap.add_argument("--rounds", type=int, default=3, help="runs per page size (medians)")
    ap.add_argument("--workers", type=int, default=2, help="gunicorn workers per app (node "
                    "default 2)")
    ap.add_argument("--threads", type=int, default=4, help="threads per worker (default 4)")
    ap.add_argument("--dirty", type=int, default=256, metavar="MIB",
                    help="unrelated dirty data for the first-flush figures (default 256)")
    ap.add_argument("--profile", type=Path, nargs="?", const=common.OUT / "sync-profile.txt",
                    default=None, metavar="FILE",
                    help="also profile one more sync's receiving worker with py-spy "
                    "(collapsed stacks to FILE, default bench/out/sync-profile.txt)")
    ap.add_argument("--against", type=Path, default=None, metavar="DIR",
                    help="another checkout (e.g. a worktree of main): each run also syncs "
                    "a fresh Ahmed running its code, in the same run")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = ap.parse_args()
    page_sizes = [int(x) for x in args.page_sizes.split(",") if x.strip()]
    for line in machine_lines():
        print(line, flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="diwan-bench-sync-"))
    print(common.create_cost(tmp), flush=True)
    nodes: list[Node] = []
    rows: list[list[str]] = []
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
        b_ids = Identities(DataDir(basant.root, environ={}))
        b_pub, b_key = b_ids.pub_document(b_fp), b_ids.public_key(b_fp).sign
        for ps in page_sizes:
            v1: list[Figure] = []
            v2: list[Figure] = []
            disk: list[Figure] = []
            ingest: list[Figure] = []
            syncs: list[Figure] = []
            others: list[Figure] = []
            other_rss: list[Figure] = []
            for r in range(args.rounds):  # baselines and results interleaved: the same noise
                v1.append(measured(one_core_verify_rate(raws, b_key)))
                v2.append(measured(two_process_verify_rate(raws, b_key)))
                disk.append(measured(common.create_syncfs_rate(tmp, raws, ps)))
                ingest.append(measured(ingest_seconds(tmp / f"ingest-{ps}-{r}", raws, b_pub,
                                                      b_fp, ps)))
                order = [None, args.against] if r % 2 == 0 else [args.against, None]
                for checkout in order if args.against else [None]:
                    run = first_sync(tmp, basant, b_fp, args.posts, ps, args.workers,
                                     args.threads, f"ahmed-{ps}-{r}-{len(others)}", checkout)
                    if checkout is None:
                        runs.append(run)
                        syncs.append(Figure(run.seconds, run.load))
                    else:
                        others.append(Figure(run.seconds, run.load))
                        other_rss.append(Figure(peak_rss(run) / MiB, run.load))
                    print(f"  page size {ps}, round {r + 1}: sync "
                          f"{'against ' if checkout else ''}{run.seconds:.2f} s (ingest_many "
                          f"{ingest[-1].value:.2f} s), load {run.load:.2f}", flush=True)
            n = args.posts
            ratio = median(s.value for s in syncs) / median(i.value for i in ingest)
            limit = min(median(f.value for f in v1), median(f.value for f in disk))
            rows += [
                [str(ps), "raw verify, one core", fig(v1, "{:,.0f}/s"), ""],
                [str(ps), "raw verify, two processes", fig(v2, "{:,.0f}/s"), ""],
                [str(ps), f"disk: create+write, one syncfs per {ps}", fig(disk, "{:,.0f}/s"),
                 ""],
                [str(ps), f"ingest_many, batches of {ps}, + index",
                 fig(ingest, "{:.2f} s"),
                 f"{n / median(i.value for i in ingest) / limit:.2f} of the limit"],
                [str(ps), f"first sync of {n:,}, POST /sync", fig(syncs, "{:.2f} s"),
                 f"{n / median(s.value for s in syncs) / limit:.2f} of the limit"],
                [str(ps), "sync time / ingest_many time (target <= 1.3)", f"{ratio:.2f}", ""],
            ]
            this_rss = [Figure(peak_rss(r) / MiB, r.load) for r in runs if r.page_size == ps]
            rows += [[str(ps), "largest RSS of any process during the sync (target < 60)",
                      fig(this_rss, "{:.1f} MiB"), ""]]
            if others:
                rows += [[str(ps), f"the same, Ahmed running {args.against}",
                          fig(other_rss, "{:.1f} MiB"), ""]]
                times = median(o.value for o in others) / median(s.value for s in syncs)
                rows += [[str(ps), f"first sync, Ahmed running {args.against}",
                          fig(others, "{:.2f} s"), f"{times:.2f} x this checkout's"]]
        page = raws[:max(page_sizes)]
        ways = [(how, dirty) for how in ("syncfs", "fsync", "auto")
                for dirty in (0, args.dirty)]
        flush_runs: dict[tuple[str, int], list[tuple[Figure, int, str]]] = {
            w: [] for w in ways}
        for _ in range(args.rounds):  # the ways interleaved: the same noise
            for how, dirty in ways:
                seconds, before, took = first_flush(tmp, page, how, dirty)
                flush_runs[how, dirty].append((measured(seconds * 1000), before, took))
        flushes = [[how if how != "auto" else "auto: " + "/".join(
                        sorted({t for _, _, t in got})),
                    f"{dirty} MiB", f"{median(d for _, d, _ in got) / 1024:.0f} MiB",
                    fig([f for f, _, _ in got], "{:.0f} ms")]
                   for (how, dirty), got in flush_runs.items()]
        if args.profile:
            profile = profile_sync(tmp, basant, b_fp, args.posts, max(page_sizes),
                                   args.workers, args.threads, args.profile)
    finally:
        stop_all(nodes)
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print(f"kept: {tmp}", flush=True)
    print(f"\n{args.posts:,} posts, median of {args.rounds} run{'s' * (args.rounds != 1)} "
          "(each run's value @ the "
          f"1-minute load average after it); gunicorn {args.workers} gthread workers x "
          f"{args.threads} threads per app. The limit is the lower of one-core verify and "
          "the disk rate. " + common.RECENTLY_DELETED)
    print(common.table(["page size", "measure", "median (runs @ load)", "ratio"], rows))
    print(f"\nthe first flush of a batch of {len(page)} new post files (unnamed files, "
          "flush, linkat, directory fsync), after unrelated data was written (not flushed) in "
          "the same file system; 'fsync' = each file on 8 threads instead of one syncfs; "
          "'auto' = base/flush.py's choice with the default flush_dirty_per_file)")
    print(common.table(["flush", "unrelated data", "dirty before (machine)",
                        "median (runs @ load)"], flushes))
    print("\nper process during the sync (MiB; VmRSS when the sync started, largest sample "
          "every 20 ms, VmHWM afterwards; CPU seconds used during the sync; the largest of "
          f"{args.rounds} runs; target < 60 MiB)")
    print(common.table(["page size", "process", "RSS before", "RSS max", "VmHWM", "CPU s"],
                       proc_rows(runs)))
    if profile:
        print("\n" + profile)


if __name__ == "__main__":
    main()
