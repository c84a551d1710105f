"""Requests/s of the peer's ``POST /feeds/<fp>`` under gunicorn against a plain Flask app.

Both servers run in the same run under the same gunicorn settings: the node's
``gunicorn.conf.py`` with ``DIWAN_ROLE=peer`` (gthread, 2 workers x 4 threads as
the node is configured by default, keep-alive 5 s, access log on). The feed
endpoint is Basant's real peer process (``tests/integration/harness.py``, the
whole Procfile: admin, peer, scheduler); the baseline is ``bench/hello_app.py``.

Every feed request needs a fresh nonce (a replay is refused), so each run's
requests are built before it starts (``exchange.build_request``, in worker
processes; an asker with in-memory keys) and each body is sent once. The
client is the same for every target: ``--clients`` processes, each with one
keep-alive connection, sending its share of the pre-built bodies as fast as
the answers come; requests/s = all answers / (last finish - first start).
Two clients are run (``--client``): ``http.client`` from the standard
library, and ``raw``, pre-serialised requests on a bare socket with a minimal
answer parser, which leaves more of the 2 cores to the server. The hello app
gets the same POST bodies (``POST /feeds/<fp>`` reads the body and answers a
few bytes), plus the classic ``GET /`` for reference. Targets, each
``--rounds`` times, median reported:

- hello ``GET /``;  hello ``POST /feeds/<fp>`` (the baseline of the ratio);
- feed, nothing new: the request asks after Basant's newest post (an empty page,
  what a scheduled sync mostly sends);
- feed, a page of 10: asks from the start, ``limit`` 10 (10 posts answered).

On 2 cores the client processes compete with the server for the CPU; the
table also gives the CPU milliseconds per request spent in the server's
processes and in the client's, which depend less on that competition. Last,
the same feed request in this process without sockets: ``serve_feed`` alone,
and the whole peer app and the hello app through werkzeug's test client
(``--profile``: the peer app under cProfile); and each of those three again with
16 MiB of other memory written between two calls, so the CPU caches (the shared
last level too) hold little of the request's code and data, as between two requests
of one gunicorn worker when four clients, the kernel's TCP, the other worker and
other tenants of the machine run in between: a bound on how much of the gap between
the in-process figures and the server CPU per request above cold caches explain.

    .venv/bin/python bench/bench_peer.py    # 6,000 requests per target, 3 rounds, both clients
    .venv/bin/python bench/bench_peer.py --client raw --clients 2,4,8 --profile
"""

from __future__ import annotations

import argparse
import cProfile
import http.client
import io
import multiprocessing
import os
import pstats
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_sync  # noqa: E402  (machine_lines, new_identity, ... ; puts the repo on sys.path)
import common  # noqa: E402
import requests  # noqa: E402

from app.core.base import crypto, noise
from app.core.base.datadir import DataDir  # noqa: E402
from app.core.identity import keys
from app.core.identity.identities import Identities  # noqa: E402
from app.core.network import exchange, ownkeys
from app.core.network.feeds import serve_feed  # noqa: E402
from app.core.posts import feedorder  # noqa: E402
from app.core.posts.index import Index  # noqa: E402
from app.core.posts.ingest import Ingestor  # noqa: E402
from tests.integration.harness import LOOPBACK, VENV_BIN, Node, free_port  # noqa: E402

ROOT = common.ROOT
HEADERS = {"Content-Type": "application/octet-stream"}


# --- the hello-world baseline under the node's gunicorn settings ---------------------------

class HelloServer:
    """``bench/hello_app.py`` under gunicorn with the node's ``gunicorn.conf.py``."""

    def __init__(self, root: Path, workers: int, threads: int) -> None:
        self.root = root
        self.workers, self.threads = workers, threads
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def start(self, timeout: float = 30) -> HelloServer:
        for _ in range(3):
            self.port = free_port()
            self._spawn()
            if self._wait(timeout):
                return self
            self.stop()
        raise SystemExit(f"the hello app did not start; see {self.root / 'hello.log'}")

    def _spawn(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "diwan.toml").write_text(
            f'peer_host = "{LOOPBACK}"\npeer_port = {self.port}\n'
            f"workers = {self.workers}\nthreads = {self.threads}\n")
        env = {k: v for k, v in os.environ.items() if not k.startswith("DIWAN_")}
        env.update(DIWAN_ROLE="peer", DIWAN_DATA_DIR=str(self.root),
                   PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "bench")]),
                   PATH=f"{VENV_BIN}{os.pathsep}{env.get('PATH', '/usr/bin:/bin')}")
        with open(self.root / "hello.log", "ab") as log:
            self.proc = subprocess.Popen(
                [str(VENV_BIN / "gunicorn"), "--config", str(ROOT / "gunicorn.conf.py"),
                 "hello_app:app"], cwd=self.root, env=env, stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def _wait(self, timeout: float) -> bool:
        """Until it answers and every worker is up (its CPU is counted from :meth:`pids`:
        a worker forked after that would be missed, halving the CPU per request shown)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.proc and self.proc.poll() is None:
            try:
                r = requests.get(self.url + "/health", timeout=1)
                if (r.status_code == 200 and r.json().get("app") == "hello"
                        and len(self.pids()) == self.workers + 1):
                    return True
            except (OSError, ValueError):
                pass
            time.sleep(0.05)
        return False

    def pids(self) -> dict[int, str]:
        if self.proc is None:
            return {}
        pgid = self.proc.pid
        out = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    if os.getpgid(int(entry.name)) == pgid:
                        out[int(entry.name)] = "hello gunicorn"
                except (ProcessLookupError, PermissionError):
                    continue
        return out

    def stop(self) -> None:
        if self.proc is None:
            return
        for sig, wait in ((signal.SIGINT, 10.0), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.proc.wait(wait)
                break
            except subprocess.TimeoutExpired:
                continue
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)  # a worker left behind
        except ProcessLookupError:
            pass
        self.proc = None


# every budget counted but none reached: the bench measures the checks, not a 429
UNLIMITED = {"budget_prefix_requests": 10**9, "budget_prefix48_requests": 10**9,
             "budget_asker_requests": 10**9, "budget_asker_bytes": 2**50}

# --- pre-built feed requests ---------------------------------------------------------------

_asker: exchange.OwnKeys | None = None
_owner: keys.PublicKey | None = None


def _build_chunk(job: tuple[int, int, int]) -> list[bytes]:
    count, after_time, limit = job
    assert _asker is not None and _owner is not None
    return [exchange.build_request(asker=_asker, owner_fp=_owner.fingerprint,
                                   owner_transport=_owner.transport_public,
                                   after=after_time, limit=limit,
                                   now=int(time.time()))[0] for _ in range(count)]


def build_bodies(pool: Any, count: int, after_time: int, limit: int) -> list[bytes]:
    chunks = [min(500, count - i) for i in range(0, count, 500)]
    return [b for part in pool.map(_build_chunk, [(c, after_time, limit) for c in chunks])
            for b in part]


def make_asker() -> exchange.OwnKeys:
    """An asker with keys in memory only (no key file: no Argon2)."""
    seed, transport = crypto.new_signing_seed(), crypto.new_transport_secret()
    pub = keys.certify(seed, [keys.DeviceCert("00000000000000be", 1,
                                              noise.keypair_from_secret(transport).public)])
    return exchange.OwnKeys(fp=pub.fingerprint, pub_document=pub.to_bytes(),
                            transport_secret=transport)


# --- the client ------------------------------------------------------------------------------

_bodies: Sequence[bytes | None] = ()


def _http_client(port: int, method: str, path: str, bodies: Sequence[bytes | None],
                 ready: Callable[[], None], statuses: Counter[int]) -> None:
    """``http.client`` on one keep-alive connection (reconnects after an error)."""
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=60)
    ready()
    for body in bodies:
        try:
            conn.request(method, path, body=body, headers=HEADERS if body else {})
            response = conn.getresponse()
            response.read()
            statuses[response.status] += 1
        except (http.client.HTTPException, OSError):
            statuses[0] += 1
            conn.close()
            conn = http.client.HTTPConnection(LOOPBACK, port, timeout=60)
    conn.close()


def _raw_client(port: int, method: str, path: str, bodies: Sequence[bytes | None],
                ready: Callable[[], None], statuses: Counter[int]) -> None:
    """Pre-serialised HTTP/1.1 requests on one keep-alive socket (a new one after an answer
    with ``Connection: close``, as ``http.client`` and peers do); answers parsed minimally
    (status line, Content-Length, Connection). Less client CPU than ``http.client``."""
    head = f"{method} {path} HTTP/1.1\r\nHost: {LOOPBACK}:{port}\r\n".encode()
    wire = [head + (b"\r\n" if body is None else b"Content-Type: application/octet-stream\r\n"
                    b"Content-Length: %d\r\n\r\n%s" % (len(body), body)) for body in bodies]
    def connect() -> socket.socket:
        made = socket.create_connection((LOOPBACK, port), timeout=60)
        made.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return made

    sock = connect()
    buf = b""
    ready()
    for request in wire:
        sock.sendall(request)
        while (end := buf.find(b"\r\n\r\n")) < 0:
            piece = sock.recv(65536)
            if not piece:
                raise SystemExit("the server closed the connection")
            buf += piece
        header = buf[:end].decode("latin-1").lower()
        length = int(header.split("content-length:", 1)[1].split("\r\n", 1)[0])
        while len(buf) < end + 4 + length:
            buf += sock.recv(65536)
        statuses[int(header[9:12])] += 1
        buf = buf[end + 4 + length:]
        if "\r\nconnection: close" in header:  # the server's last answer on it: reconnect
            sock.close()
            sock, buf = connect(), b""
    sock.close()


CLIENTS = {"http.client": _http_client, "raw": _raw_client}


def _client(kind: str, port: int, method: str, path: str, lo: int, hi: int, barrier: Any,
            out: Any) -> None:
    """One client process: its share ``lo .. hi-1`` of the bodies, timed from the barrier."""
    statuses: Counter[int] = Counter()
    marks: dict[str, Any] = {}

    def ready() -> None:  # set-up done: wait for the others, then start the clock
        barrier.wait()
        marks["cpu"], marks["t"] = os.times(), time.perf_counter()

    CLIENTS[kind](port, method, path, _bodies[lo:hi], ready, statuses)
    finished, cpu = time.perf_counter(), os.times()
    used = cpu.user + cpu.system - marks["cpu"].user - marks["cpu"].system
    out.put((marks["t"], finished, dict(statuses), used))


@dataclass
class Load:
    count: int
    seconds: float
    statuses: Counter[int]
    client_cpu: float
    server_cpu: float
    server_sys: float

    @property
    def rps(self) -> float:
        return self.count / self.seconds


def run_load(port: int, method: str, path: str, bodies: Sequence[bytes | None], clients: int,
             server_pids: Sequence[int], kind: str = "http.client") -> Load:
    """Send every body once over ``clients`` keep-alive connections; time all of them."""
    global _bodies
    _bodies = bodies
    ctx = multiprocessing.get_context("fork")
    barrier, out = ctx.Barrier(clients + 1), ctx.Queue()
    edges = [round(i * len(bodies) / clients) for i in range(clients + 1)]
    procs = [ctx.Process(target=_client, args=(kind, port, method, path, edges[i],
                                               edges[i + 1], barrier, out))
             for i in range(clients)]
    for p in procs:
        p.start()
    cpu0 = [bench_sync.cpu_split(pid) for pid in server_pids]
    barrier.wait()
    results = [out.get(timeout=600) for _ in procs]
    cpu1 = [bench_sync.cpu_split(pid) for pid in server_pids]
    user = sum(b[0] - a[0] for a, b in zip(cpu0, cpu1, strict=True))
    system = sum(b[1] - a[1] for a, b in zip(cpu0, cpu1, strict=True))
    for p in procs:
        p.join(30)
    statuses: Counter[int] = Counter()
    for r in results:
        statuses.update(r[2])
    return Load(len(bodies), max(r[1] for r in results) - min(r[0] for r in results), statuses,
                sum(r[3] for r in results), user + system, system)


# --- the bench ------------------------------------------------------------------------------

def check_feed(node: Node, owner_fp: str, after_time: int, limit: int, expect: int) -> None:
    """One real exchange, opened, before timing: the bench measures real answers."""
    assert _asker is not None and _owner is not None
    body, pending = exchange.build_request(asker=_asker, owner_fp=owner_fp,
                                           owner_transport=_owner.transport_public,
                                           after=after_time, limit=limit,
                                           now=int(time.time()))
    r = node.peer("POST", f"/feeds/{owner_fp}", data=body, headers=HEADERS)
    if r.status_code != 200:
        raise SystemExit(f"feed request: {r.status_code} {r.text[:300]}")
    got = exchange.open_response(r.content, pending, max_bytes=32 << 20)
    if len(got.posts) != expect:
        raise SystemExit(f"expected {expect} posts in the answer, got {len(got.posts)}")


def _timed(call: Any, bodies: list[bytes], profile: bool) -> tuple[float, str]:
    """Calls/s of ``call(body)`` over ``bodies`` in this thread (optionally under cProfile)."""
    prof = cProfile.Profile() if profile else None
    started = time.perf_counter()
    if prof:
        prof.enable()
    for body in bodies:
        call(body)
    if prof:
        prof.disable()
    rate = len(bodies) / (time.perf_counter() - started)
    text = ""
    if prof:
        out = io.StringIO()
        pstats.Stats(prof, stream=out).sort_stats("cumulative").print_stats(30)
        text = "\n".join(out.getvalue().splitlines()[:50])
    return rate, text


SWEEP_BYTES = 16 << 20  # touched between two calls of a "caches swept" row


def _timed_swept(call: Any, bodies: list[bytes]) -> float:
    """Calls/s of ``call(body)`` counting only the calls, with :data:`SWEEP_BYTES` of
    other memory written between two calls: the CPU caches hold little of the request's
    code and data, as under gunicorn, where four clients, the kernel's TCP and the other
    worker run between two requests of one worker."""
    junk = bytearray(SWEEP_BYTES)
    spent = 0.0
    for body in bodies:
        junk[::64] = bytes(len(junk[::64]))  # one write per cache line
        started = time.perf_counter()
        call(body)
        spent += time.perf_counter() - started
    return len(bodies) / spent


def in_process(dd: DataDir, owner_fp: str, pool: Any, newest: int, n: int, profile: bool
               ) -> tuple[list[list[str]], str]:
    """The feed request in this process, one thread, no sockets: where the time goes.

    ``serve_feed`` alone (the core), then the whole peer app and the hello app
    through the same werkzeug test client (Flask, flask-smorest, routing).
    """
    import hello_app

    from app import create_peer_app

    path = f"/feeds/{owner_fp}"
    peer = create_peer_app({"data_dir": str(dd.root), **UNLIMITED}).test_client()
    hello = hello_app.app.test_client()
    # app.core.network.ownkeys reloads its table on every request while the identities
    # folder changed less than RACY seconds ago (it did, when the asker was imported)
    time.sleep(ownkeys.RACY)

    def via(client: Any) -> Any:
        def call(body: bytes) -> None:
            r = client.post(path, data=body, headers=HEADERS)
            if r.status_code != 200:
                raise SystemExit(f"in-process {path}: {r.status_code} {r.data[:200]!r}")
        return call

    def core(body: bytes) -> None:
        serve_feed(dd, owner_fp, body, remote="127.0.0.1").read()

    targets = [("serve_feed() only (the core)", core, False),
               ("peer app, werkzeug test client", via(peer), profile),
               ("hello app POST, werkzeug test client", via(hello), False)]
    rows, text = [], ""
    for label, call, prof in targets:
        rate, out = _timed(call, build_bodies(pool, n, newest, 10), False)
        rows.append([label, f"{rate:,.0f}", f"{1000 / rate:.3f}"])
        if prof:  # a second pass under the profiler: the figures above are without it
            text = _timed(call, build_bodies(pool, n, newest, 10), True)[1]
    for label, call, _ in targets:
        rate = _timed_swept(call, build_bodies(pool, n, newest, 10))
        rows.append([f"{label}, {SWEEP_BYTES >> 20} MiB swept between calls", f"{rate:,.0f}",
                     f"{1000 / rate:.3f}"])
    return rows, text


def setup_basant(root: Path, n: int, workers: int, threads: int) -> tuple[Node, str, int]:
    dd, fp = bench_sync.new_identity(root)
    seed = Identities(dd).open_seed(fp, bench_sync.PASSWORD)
    raws = bench_sync.text_posts(seed, n, first_time=int(time.time()) - 3600)
    Ingestor(dd, index=Index(dd)).ingest_many(raws, author=fp)
    newest = max(p for p, _ in feedorder.feed_summary(  # after the newest post: nothing new
        Index(dd), fp, fp, after=0, limit=n)[0])
    assert _asker is not None
    Identities(dd).import_pub(_asker.pub_document)  # a contact: the pinned path is measured
    node = bench_sync.bench_node(root, "basant", workers=workers, threads=threads,
                                 settings={"sync_interval": 86400, **UNLIMITED})
    return node, fp, newest


def main() -> None:
    global _asker, _owner
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", "-n", type=int, default=6000, help="per target and round")
    ap.add_argument("--clients", default="4", help="client processes (comma list: a sweep)")
    ap.add_argument("--client", default="http.client,raw",
                    help="client kinds, comma list: http.client, raw (a bare socket)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--posts", type=int, default=100, help="posts in Basant's feed")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--profile", action="store_true", help="cProfile serve_feed in-process")
    args = ap.parse_args()
    setups = [(kind.strip(), int(n)) for kind in args.client.split(",") if kind.strip()
              for n in args.clients.split(",") if n.strip()]
    if any(kind not in CLIENTS for kind, _ in setups):
        raise SystemExit(f"--client takes {', '.join(CLIENTS)}")
    for line in bench_sync.machine_lines():
        print(line, flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="diwan-bench-peer-"))
    node: Node | None = None
    hello = HelloServer(tmp / "hello", args.workers, args.threads)
    results: dict[tuple[str, str], list[Load]] = {}
    profile_text = ""
    in_rows: list[list[str]] = []
    _asker = make_asker()
    try:
        node, fp, newest = setup_basant(tmp / "basant", args.posts, args.workers, args.threads)
        bench_sync.start_owned(node, fp)
        hello.start()
        dd = DataDir(node.root, environ={})
        _owner = keys.parse_pub(Identities(dd).pub_document(fp))
        check_feed(node, fp, newest, 10, 0)
        check_feed(node, fp, 0, 10, 10)
        feed_pids = [pid for pid, label in bench_sync.node_processes(node).items()
                     if " peer" in label]
        hello_pids = list(hello.pids())
        path = f"/feeds/{fp}"
        with multiprocessing.get_context("fork").Pool(2) as pool:
            warm = build_bodies(pool, 400, newest, 10)
            run_load(node.peer_port or 0, "POST", path, warm, 4, feed_pids)
            run_load(hello.port, "POST", path, warm, 4, hello_pids)
            for kind, clients in setups:
                who = f"{kind} x {clients}"
                for rnd in range(args.rounds):
                    empty = build_bodies(pool, args.requests, newest, 10)
                    page = build_bodies(pool, args.requests, 0, 10)
                    runs = [("hello GET /", hello.port, "GET", "/", [None] * args.requests,
                             hello_pids),
                            ("hello POST (same bodies)", hello.port, "POST", path, empty,
                             hello_pids),
                            ("feed, nothing new", node.peer_port, "POST", path, empty,
                             feed_pids),
                            ("feed, page of 10 posts", node.peer_port, "POST", path, page,
                             feed_pids)]
                    for label, port, method, p, bodies, pids in runs:
                        load = run_load(port or 0, method, p, bodies, clients, pids, kind)
                        results.setdefault((who, label), []).append(load)
                        print(f"  {who}, round {rnd + 1}: {label}: "
                              f"{load.rps:,.0f} req/s {dict(load.statuses)}", flush=True)
            in_rows, profile_text = in_process(dd, fp, pool, newest, 2000, args.profile)
    finally:
        hello.stop()
        if node is not None:
            node.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    report(results, args, in_rows, profile_text)


def report(results: dict[tuple[str, str], list[Load]], args: Any,
           in_rows: list[list[str]], profile_text: str) -> None:
    print(f"\n{args.requests:,} requests per target per round, {args.rounds} rounds (median "
          f"shown); gunicorn gthread {args.workers} workers x {args.threads} threads for both; "
          f"load average now {os.getloadavg()[0]:.2f}")
    rows = []
    for who in dict.fromkeys(w for w, _ in results):
        base = statistics.median(x.rps for x in results[(who, "hello POST (same bodies)")])
        for (w, label), loads in results.items():
            if w != who:
                continue
            rps = statistics.median(x.rps for x in loads)
            bad = sum(sum(n for s, n in x.statuses.items() if s != 200) for x in loads)
            n = sum(x.count for x in loads)
            rows.append([who, label, f"{rps:,.0f}",
                         " / ".join(f"{x.rps:,.0f}" for x in loads), f"{rps / base:.2f}",
                         f"{1000 * sum(x.server_cpu for x in loads) / n:.3f} "
                         f"({1000 * sum(x.server_sys for x in loads) / n:.3f})",
                         f"{1000 * sum(x.client_cpu for x in loads) / n:.3f}", str(bad)])
    print(common.table(["client x processes", "target", "req/s (median)", "rounds", "vs hello POST",
                        "server CPU ms/req (system)", "client CPU ms/req", "non-200"], rows))
    print("\nin this process, one thread, no sockets (feed: nothing new; 2,000 calls each)")
    print(common.table(["what", "calls/s", "ms/call"], in_rows))
    if profile_text:
        print("\n" + profile_text)


if __name__ == "__main__":
    main()
