"""Crash bench: SIGKILL every process of a real node at random moments of four kinds of write.

Ahmed (a whole Procfile node on 127.0.0.1: admin and peer gunicorn with their
workers, and the scheduler) has one own identity and follows Basant (another
whole node, never killed, holding ``--posts`` posts). Each round is one kind,
in turn:

``publish``
    two client threads ``POST /posts`` (a signed post each) on Ahmed's admin API;
``sync``
    about half of his copies of Basant's posts are deleted while he is stopped,
    then ``POST /sync`` (full, pages of 50) pulls them again;
``delete``
    ``DELETE /posts/<sha>`` of his copies of Basant's posts, one after another;
``password``
    ``POST /identities/<fp>/password`` between two passwords, back and forth
    (this re-seals the key file and rotates the transport key).

Ahmed is started, the round's client starts, and after a random ``0.1 ..
--max-delay`` seconds every process of his gets SIGKILL at once (each process
group: masters and workers). Then, with the node down:

* **torn**: every post file under ``posts/`` must verify whole (``verify_file``:
  name = SHA-1, signature good), and every other file with a structure must read
  as the node reads it (``diwan.toml``, key files, ``.pub`` documents, JSON state);
  temporaries (``.tmp-*``, skipped by readers and cleaned at start once old) are
  counted;
* **lost**: every post whose publication was acknowledged (201) in any round so
  far must be there, whole; every copy whose deletion was acknowledged (204) in
  this round must be gone, unless it was written again after the DELETE was sent
  (its ctime):
  the scheduler's first sync, 5 s after a start, fetches deleted copies of the
  newest posts again (``sync_overlap``), which is the sync's rule, not a crash;
  those are counted as "fetched again";
* **key**: the key file must open with the last acknowledged password or with
  the one a killed request was setting (never neither);
* **index**: the rows of the post index are compared with the files (a kill between
  a file and its row leaves them apart: counted as "stale"), then the node's own
  repair (``reconcile``, the one every query runs) must make them the same;
* **start**: the next round (and the end) starts the node again; it must come up
  and answer a feed request made to the transport key of its published ``.pub``
  (a password change rotates that key: "serves" counts the starts where it did not).

At the end the node is started once more, the doctor's report (``diwan doctor``)
must list no problem, a rebuild of the index (``diwan reindex``) must index exactly
the files held and a last, uninterrupted sync
must bring every post of Basant's that Ahmed did not delete through the API (those are
remembered as deleted here and never fetched again; copies removed behind the node's
back by the ``sync`` kind come back).

The key files use libsodium's minimum Argon2id cost (``DIWAN_INSECURE_KDF=1``,
the suite's switch) so that publishing and password changes spend their time
writing, where the kills are meant to land; ``--real-kdf`` uses the real cost.

    .venv/bin/python bench/crash.py                          # 200 kills, 50 per kind
    .venv/bin/python bench/crash.py --kills 8 --posts 300    # what the suite runs
    .venv/bin/python bench/crash.py --kills 20 --kinds password,publish --real-kdf
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import sqlite3
import sys
import tempfile
import threading
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402

from app.core.base import crypto  # noqa: E402
from app.core.base.config import INSECURE_KDF_ENV  # noqa: E402
from app.core.base.datadir import DataDir  # noqa: E402
from app.core.base.errors import DiwanError, WrongPassword  # noqa: E402
from app.core.base.fsio import TEMP_PREFIX  # noqa: E402
from app.core.identity import keys  # noqa: E402
from app.core.identity.identities import Identities  # noqa: E402
from app.core.network import exchange  # noqa: E402
from app.core.posts.index import Index  # noqa: E402
from app.core.posts.reconcile import rebuild, reconcile, verify_file  # noqa: E402
from app.core.posts.records import local_deletions  # noqa: E402
from app.core.upkeep import doctor  # noqa: E402
from tests.integration.harness import Node, NodeError  # noqa: E402

KINDS = ("publish", "sync", "delete", "password")
CLOCK_SLACK_NS = 50_000_000  # file ctimes (coarse clock) against time.time_ns()
TEMP_PLACES: set[str] = set()  # where temporaries were seen (folder, name start)
PASSWORDS = ("crash-password-one", "crash-password-two")


@dataclass
class Figures:
    """What the rounds of one kind found (every count but ``acked``/``stale``/``temps``
    must be 0)."""

    kills: int = 0
    acked: int = 0          # writes acknowledged before the kills
    torn: int = 0           # post files that do not verify
    temps: int = 0          # temporaries left (largest after one kill)
    lost: int = 0           # acknowledged posts missing, acknowledged deletions undone
    refetched: int = 0      # deleted copies a sync fetched again after the 204 (not undone)
    key_bad: int = 0        # key file opens with neither password
    stale: int = 0          # index rows and files apart after the kill (before repair)
    index_off: int = 0      # still apart after the node's repair
    unserved: int = 0       # restarted node did not answer a feed request to its .pub
    delays: list[float] = field(default_factory=list)

    @property
    def faults(self) -> int:
        return self.torn + self.lost + self.key_bad + self.index_off + self.unserved


@dataclass
class Final:
    doctor_ok: bool = False
    indexed: int = -1
    whole: int = -2
    synced: int = 0
    expected: int = -1
    sync_error: Any = "not run"

    @property
    def ok(self) -> bool:
        return (self.doctor_ok and self.indexed == self.whole
                and self.synced == self.expected and self.sync_error is None)


class Workload:
    """The client side of one round: runs until ``stop`` or until the node dies."""

    def __init__(self, node: Node, fp: str, b_fp: str, state: dict[str, Any]) -> None:
        self.node, self.fp, self.b_fp, self.state = node, fp, b_fp, state
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.acked_posts: set[str] = set()
        self.acked_deletes: dict[str, int] = {}  # sha1 -> time.time_ns() the DELETE was sent
        self.pending_password: str | None = None
        self.acked_passwords = 0
        self.threads: list[threading.Thread] = []

    def start(self, kind: str, rng: random.Random) -> None:
        jobs: list[Callable[[], None]] = {
            "publish": [lambda: self._publish(1), lambda: self._publish(2)],
            "sync": [self._sync],
            "delete": [lambda: self._delete(rng.random())],
            "password": [self._password],
        }[kind]
        self.threads = [threading.Thread(target=self._guard, args=(job,), daemon=True)
                        for job in jobs]
        for t in self.threads:
            t.start()

    def join(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(30)

    def _guard(self, job: Callable[[], None]) -> None:
        try:
            job()
        except (requests.RequestException, OSError):
            pass  # killed mid-request: that is the point

    def _publish(self, n: int) -> None:
        i = 0
        while not self.stop.is_set():
            i += 1
            r = self.node.admin("POST", "/posts", timeout=60, json={
                "fingerprint": self.fp, "password": self.state["password"],
                "text": f"crash round post {n}.{i} {time.time_ns()}"})
            if r.status_code == 201:
                with self.lock:
                    self.acked_posts.add(r.json()["sha1"])

    def _sync(self) -> None:
        self.node.admin("POST", "/sync", timeout=600,
                        json={"fingerprint": self.b_fp, "full": True})

    def _delete(self, shuffle: float) -> None:
        folder = self.node.root / "posts" / self.b_fp
        names = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
        random.Random(shuffle).shuffle(names)
        for sha in names:
            if self.stop.is_set():
                return
            sent_ns = time.time_ns()
            if self.node.admin("DELETE", f"/posts/{sha}", timeout=60).status_code == 204:
                with self.lock:
                    self.acked_deletes[sha] = sent_ns

    def _password(self) -> None:
        while not self.stop.is_set():
            old = self.state["password"]
            new = PASSWORDS[1 - PASSWORDS.index(old)]
            self.pending_password = new
            r = self.node.admin("POST", f"/identities/{self.fp}/password", timeout=60,
                                json={"old_password": old, "new_password": new})
            if r.status_code != 200:
                raise SystemExit(f"password change answered {r.status_code}: {r.text[:200]}")
            self.state["password"], self.pending_password = new, None
            self.acked_passwords += 1


def check_files(root: Path) -> tuple[set[tuple[str, str]], int, int]:
    """({(author, sha1)} of whole post files, torn or wrong post files, temporaries)."""
    dd = DataDir(root, environ={})
    whole: set[tuple[str, str]] = set()
    torn = temps = 0
    for folder, _dirs, files in os.walk(root):
        for name in files:
            path = Path(folder, name)
            if name.startswith(TEMP_PREFIX):
                temps += 1
                TEMP_PLACES.add(str(path.parent.relative_to(root)).split("/")[0] + "/"
                                + name[:len(TEMP_PREFIX) + 12])
            elif path.parent.parent == dd.posts:
                post = verify_file(dd, path)
                if post is None or post.sha1 != name:
                    torn += 1
                else:
                    whole.add((path.parent.name, name))
    return whole, torn, temps


def check_state(root: Path) -> list[str]:
    """Every other file the node writes that has a structure, read as the node reads it:
    settings, key files and ``.pub`` documents, JSON state; the names of those that do
    not read (a torn write)."""
    dd, bad = DataDir(root, environ={}), []
    ids = Identities(dd)
    for path in sorted(p for p in root.rglob("*") if p.is_file()
                       and not p.name.startswith(TEMP_PREFIX)):
        rel = path.relative_to(root)
        try:
            if path.suffix == ".json":
                json.loads(path.read_bytes())
            elif path.suffix == ".toml":
                tomllib.loads(path.read_text("utf-8"))
            elif rel.parts[0] == "identities" and path.suffix == ".pub":
                keys.parse_pub(path.read_bytes(), expected_fp=path.stem)
            elif rel.parts[0] == "identities" and len(rel.parts) == 2 and not path.suffix:
                ids.private_key(path.name)
        except (ValueError, DiwanError) as exc:
            bad.append(f"{rel}: {exc}")
    return bad


def index_rows(root: Path) -> set[tuple[str, str]]:
    """{(author, sha1)} of every row of the post index (read-only; the node is down)."""
    path = root / "state" / "index.sqlite3"
    if not path.exists():
        return set()
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as c:
        return {(fp, sha.hex()) for fp, sha in
                c.execute("SELECT f.fp, p.sha FROM posts p JOIN fps f ON f.id = p.author")}


def repaired_rows(root: Path) -> set[tuple[str, str]]:
    """The rows after the node's own repair (what the first query after a start runs)."""
    index = Index(DataDir(root, environ={}))
    try:
        reconcile(index, force=True)
    finally:
        index.close()
    return index_rows(root)


def key_opens(root: Path, fp: str, passwords: list[str]) -> str | None:
    """The first of ``passwords`` that opens ``fp``'s key file, or None."""
    ids = Identities(DataDir(root, environ={}))
    for password in passwords:
        try:
            ids.open_seed(fp, password)
            return password
        except WrongPassword:
            continue
    return None


def serves(node: Node, fp: str) -> bool:
    """True if ``node`` answers 200 to a stranger's feed request sealed to the transport
    key its peer API publishes for ``fp`` (what every contact does next)."""
    owner = keys.parse_pub(node.peer("GET", f"/identities/{fp}", timeout=30).content)
    seed, transport = crypto.new_signing_seed(), crypto.new_transport_secret()
    pub = keys.certify(seed, crypto.transport_public(transport))
    asker = exchange.OwnKeys(fp=pub.fingerprint, pub_document=pub.to_bytes(),
                             transport_secret=transport)
    body, _ = exchange.build_request(asker=asker, owner_fp=fp,
                                     owner_transport=owner.transport_public, after=0,
                                     limit=5, now=int(time.time()))
    r = node.peer("POST", f"/feeds/{fp}", data=body, timeout=30,
                  headers={"Content-Type": "application/octet-stream"})
    return r.status_code == 200


def kill_all(node: Node) -> None:
    for name in list(node.procs):
        node.kill(name, signal.SIGKILL, group=True)
    node.reap(10)


def forget_half(folder: Path, rng: random.Random) -> int:
    """Delete about half of the (stopped) follower's copies, so the next full sync has
    files to write again; returns how many."""
    if not folder.is_dir():
        return 0
    gone = [p for p in sorted(folder.iterdir()) if rng.random() < 0.5]
    for path in gone:
        path.unlink()
    return len(gone)


class CrashRun:
    """Basant and Ahmed in ``tmp``; :meth:`round` kills Ahmed once during one kind of write."""

    def __init__(self, tmp: Path, posts: int, max_delay: float, seed: int,
                 workers: int = 2, threads: int = 2) -> None:
        import bench_sync  # the harness helpers (Basant's posts, owned ports, follow)
        self.bs = bench_sync
        self.tmp, self.posts, self.max_delay = tmp, posts, max_delay
        self.rng = random.Random(seed)
        self.basant, self.b_fp, _ = bench_sync.make_basant(tmp / "basant", posts, [500], 1, 2)
        _, self.fp = bench_sync.new_identity(tmp / "ahmed", PASSWORDS[0])
        self.ahmed = bench_sync.bench_node(
            tmp / "ahmed", "ahmed", workers=workers, threads=threads,
            settings={"max_page_size": 50, "sync_interval": 86400,
                      "sync_max_pages": posts})
        self.state: dict[str, Any] = {"password": PASSWORDS[0]}
        self.published: set[str] = set()
        self.figures = {kind: Figures() for kind in KINDS}
        self.final = Final()
        self.last_kind: str | None = None  # whose kill the next start follows

    def __enter__(self) -> CrashRun:
        """Both nodes started at once; Ahmed follows Basant and stays up for round 1."""
        for node in (self.basant, self.ahmed):
            node.start(wait=False)
        for node, fp in ((self.basant, self.b_fp), (self.ahmed, self.fp)):
            try:
                node.wait_ready()
                owned = self.bs.owns_ports(node, fp)
            except NodeError:
                owned = False
            if not owned:  # a port taken meanwhile by someone else: start it again
                node.stop()
                self.bs.start_owned(node, fp)
        self.bs.follow(self.ahmed, self.fp, self.b_fp, self.basant)
        return self

    def __exit__(self, *exc: object) -> None:
        self.ahmed.stop()
        self.basant.stop()

    def round(self, kind: str) -> None:
        root, fig = self.ahmed.root, self.figures[kind]
        if kind == "sync" and not self.ahmed.procs:
            forget_half(root / "posts" / self.b_fp, self.rng)
        copies = root / "posts" / self.b_fp
        before = {p.name for p in copies.iterdir()} if copies.is_dir() else set()
        if not self.ahmed.procs:  # down since the last kill (up after __enter__)
            self._started()
        work = Workload(self.ahmed, self.fp, self.b_fp, self.state)
        work.start(kind, self.rng)
        delay = self.rng.uniform(0.1, self.max_delay)
        time.sleep(delay)
        kill_all(self.ahmed)
        work.join()
        fig.kills += 1
        fig.delays.append(delay)
        self.last_kind = kind
        fig.acked += len(work.acked_posts) + len(work.acked_deletes) + work.acked_passwords
        self.published |= work.acked_posts
        whole, torn, temps = check_files(root)
        broken = check_state(root)
        if broken:
            print(f"torn state after a {kind} kill: {broken}", flush=True)
        fig.torn += torn + len(broken)
        fig.temps = max(fig.temps, temps)
        held = {sha for _fp, sha in whole}
        if kind == "sync":  # one long request, never acknowledged: count the copies written
            fig.acked += len({sha for fp, sha in whole if fp == self.b_fp} - before)
        fig.lost += len(self.published - held)
        for sha, sent_ns in work.acked_deletes.items():
            path = root / "posts" / self.b_fp / sha
            try:
                written_ns = path.stat().st_ctime_ns
            except FileNotFoundError:
                continue
            # file times come from the kernel's coarse clock (a tick behind at most)
            if written_ns > sent_ns - CLOCK_SLACK_NS:  # written anew: a sync fetched it
                fig.refetched += 1
            else:
                fig.lost += 1  # the very file whose deletion was acknowledged
        opened = key_opens(root, self.fp, [self.state["password"]]
                           + ([work.pending_password] if work.pending_password else []))
        if opened is None:
            fig.key_bad += 1
        else:
            self.state["password"] = opened
        rows = index_rows(root)
        fig.stale += len(rows ^ whole)
        fig.index_off += len(repaired_rows(root) ^ whole)

    def finish(self) -> None:
        """Start again; doctor, reindex, then a last uninterrupted full sync."""
        root, final = self.ahmed.root, self.final
        self._started()
        dd = DataDir(root, environ={})
        health = doctor.report(dd)  # what diwan doctor reports
        final.doctor_ok = bool(health["ok"])
        if not final.doctor_ok:
            print(f"doctor: {health['problems']}")
        index = Index(dd)
        try:
            final.indexed = rebuild(index)  # what diwan reindex does
        finally:
            index.close()
        whole, _torn, _temps = check_files(root)
        final.whole = len(whole)
        status = self.bs.admin_ok(self.ahmed, "POST", "/sync", timeout=600,
                                  json={"fingerprint": self.b_fp, "full": True})["statuses"][0]
        final.sync_error = status["last_error"]
        final.synced = len(list((root / "posts" / self.b_fp).iterdir()))
        # copies lost behind the node's back come back with a full sync; copies deleted
        # through the API are remembered as deleted here (issue 9) and never come back
        kept_away = {sha for sha, author in local_deletions(dd).items() if author == self.b_fp}
        final.expected = self.posts - len(kept_away)
        self.ahmed.stop()

    def _started(self) -> None:
        """Start Ahmed (SystemExit if he cannot) and check that he serves his .pub's key."""
        self.bs.start_owned(self.ahmed, self.fp)
        if self.last_kind is not None and not serves(self.ahmed, self.fp):
            self.figures[self.last_kind].unserved += 1


def run(tmp: Path, *, kills: int, posts: int, max_delay: float, seed: int,
        kinds: tuple[str, ...] = KINDS,
        progress: Callable[[str], None] = lambda _line: None) -> CrashRun:
    """``kills`` rounds (``kinds`` in turn) and the final checks; returns the figures."""
    with CrashRun(tmp, posts, max_delay, seed) as crash:
        for n in range(kills):
            kind = kinds[n % len(kinds)]
            crash.round(kind)
            fig = crash.figures[kind]
            progress(f"{n + 1}/{kills} {kind}: faults so far {fig.faults}, stale {fig.stale}")
        crash.finish()
    return crash


def report(crash: CrashRun, args: argparse.Namespace) -> bool:
    print("\n".join(crash.bs.machine_lines()))
    print(f"\n{args.kills} SIGKILLs of every Ahmed process (2 workers x 2 threads per app and "
          f"the scheduler), kinds in turn; {args.posts:,} posts at Basant, pages of 50; "
          f"seed {args.seed}; random delay 0.1-{args.max_delay} s\n")
    rows = []
    for kind, f in crash.figures.items():
        if not f.kills:
            continue
        rows.append([kind, str(f.kills), str(f.acked), str(f.torn), str(f.lost), str(f.key_bad),
                     str(f.refetched), str(f.stale), str(f.index_off), str(f.unserved),
                     str(f.temps)])
    print(common.table(["kind", "kills", "writes acknowledged (sync: copies written)",
                        "torn files",
                        "acknowledged lost", "key opens with neither",
                        "deleted copies fetched again", "index rows apart "
                        "after kill", "apart after repair", "restart not serving",
                        "temporaries (max)"], rows))
    final = crash.final
    print(f"\ntemporaries seen in: {', '.join(sorted(TEMP_PLACES)) or 'none'}")
    print(f"node started again after every kill: yes ({args.kills} starts)")
    print(f"doctor after the last kill: {'ok' if final.doctor_ok else 'PROBLEMS'}")
    print(f"index rebuilt (reindex): {final.indexed} indexed of {final.whole} whole files")
    print(f"last sync, uninterrupted: {final.synced} of {final.expected} held, "
          f"error {final.sync_error!r}")
    faults = sum(f.faults for f in crash.figures.values())
    print(f"faults over all rounds: {faults} (must be 0)")
    return faults == 0 and final.ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kills", type=int, default=200)
    parser.add_argument("--posts", type=int, default=2000)
    parser.add_argument("--max-delay", type=float, default=1.5)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--kinds", default=",".join(KINDS),
                        help="comma-separated kinds of write, taken in turn")
    parser.add_argument("--real-kdf", action="store_true",
                        help="key files at the real Argon2id cost (kills land in the KDF)")
    args = parser.parse_args()
    if not args.real_kdf:
        os.environ[INSECURE_KDF_ENV] = "1"
    tmp = Path(tempfile.mkdtemp(prefix="diwan-crash-"))
    started = time.monotonic()
    try:
        kinds = tuple(k for k in args.kinds.split(",") if k)
        if not kinds or set(kinds) - set(KINDS):
            raise SystemExit(f"--kinds: some of {', '.join(KINDS)}")
        crash = run(tmp, kills=args.kills, posts=args.posts, max_delay=args.max_delay,
                    seed=args.seed, kinds=kinds, progress=lambda line: print(line, flush=True))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    ok = report(crash, args)
    print(f"wall time {time.monotonic() - started:.0f} s")
    if not ok:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
