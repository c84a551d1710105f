"""Issue 9: what a sync costs now that it asks after a position in the owner's order.

Two parts, each run on this checkout and, with ``--against DIR``, on another
checkout (e.g. main in a git worktree) in the same run, in subprocesses:

1. **Bytes on the wire** between a follower (this process, ``sync_contact``) and an
   owner holding ``--posts`` (10,000) public posts, whose real peer app runs in a
   child process (werkzeug on 127.0.0.1) behind a counter of request and
   response body bytes: the first sync, a sync with nothing new, one with 1 new
   post, one with 1 new post dated an hour back, and one after the owner rebuilt
   its index (a new epoch) with 1 new post. The first sync's wall time too.
2. **CPU of a sync round where nothing is new**: ``--contacts`` (200) identities on
   one owner node (its peer app in a child process), each with one post; the
   follower syncs them all once, then runs the scheduler's round (``sync_all``)
   and the CPU time of this process (``time.process_time``, all threads: the
   follower's side only) is divided by the contacts.

    .venv/bin/python bench/bench_cursor.py
    git -C /work/main worktree add /tmp/main-bench main
    .venv/bin/python bench/bench_cursor.py --against /tmp/main-bench
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def _repo_on_path(repo: Path) -> None:
    sys.path.insert(0, str(repo))


class Counter:
    """WSGI middleware counting request and response body bytes into shared values."""

    def __init__(self, app: Any, up: Any, down: Any) -> None:
        self.app, self.up, self.down = app, up, down

    def __call__(self, environ: dict[str, Any], start: Any) -> Any:
        with self.up.get_lock():
            self.up.value += int(environ.get("CONTENT_LENGTH") or 0)
        for chunk in self.app(environ, start):
            with self.down.get_lock():
                self.down.value += len(chunk)
            yield chunk


def _serve(root: str, port: Any, up: Any, down: Any) -> None:
    import logging

    from werkzeug.serving import make_server

    from app import create_peer_app

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    app = create_peer_app({"data_dir": root, "budget_prefix_requests": 10**9,
                           "budget_asker_requests": 10**9, "budget_asker_bytes": 2**50,
                           "max_page_size": 1000})
    server = make_server("127.0.0.1", 0, Counter(app, up, down), threaded=True)
    port.value = server.server_port
    server.serve_forever()


def start_owner(root: Path) -> tuple[Any, str, Any, Any]:
    ctx = multiprocessing.get_context("fork")
    port, up, down = ctx.Value("i", 0), ctx.Value("q", 0), ctx.Value("q", 0)
    proc = ctx.Process(target=_serve, args=(str(root), port, up, down), daemon=True)
    proc.start()
    while not port.value:
        time.sleep(0.05)
    return proc, f"http://127.0.0.1:{port.value}", up, down


def cpu_of(pid: int) -> float:
    """CPU seconds (user + system) a process has used, from ``/proc/<pid>/stat``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def node(root: Path) -> Any:
    from app.core.base.datadir import DataDir

    dd = DataDir(root, environ={})
    dd.initialise()
    return dd


def bytes_part(tmp: Path, n: int) -> dict[str, Any]:
    from app.core.identity.identities import Identities
    from app.core.network.contacts import Contacts
    from app.core.network.sync import sync_contact
    from app.core.posts.codec import build_post
    from app.core.posts.ingest import Ingestor
    from app.core.posts.reconcile import open_index, rebuild

    owner, me = node(tmp / "owner"), node(tmp / "me")
    b = Identities(owner).create("bench-password-long")
    a = Identities(me).create("bench-password-x")
    seed = Identities(owner).open_seed(b, "bench-password-long")
    Identities(owner).import_pub(Identities(me).pub_document(a))
    Identities(me).import_pub(Identities(owner).pub_document(b))
    now = int(time.time())
    count = [0]

    def post(created: int) -> bytes:
        count[0] += 1
        return build_post(seed, {"CREATED_TIME": created,
                                 "TEXT": f"post {count[0]} " + "words and more words " * 3})

    Ingestor(owner).ingest_many([post(now - 3 * n + 3 * i) for i in range(n)], author=b)
    proc, address, up, down = start_owner(owner.root)
    out: dict[str, Any] = {}
    try:
        Contacts(me).put(b, address, a)

        def sync(name: str) -> None:
            u0, d0, t0 = up.value, down.value, time.perf_counter()
            c0, o0 = time.process_time(), cpu_of(proc.pid)
            st = sync_contact(me, b)
            took = time.perf_counter() - t0
            cpu, owner_cpu = time.process_time() - c0, cpu_of(proc.pid) - o0
            if st.last_error:
                raise SystemExit(f"{name}: {st.last_error}")
            out[name] = {"up": up.value - u0, "down": down.value - d0, "posts": st.posts_last_run,
                         "seconds": took, "cpu": cpu, "owner cpu": owner_cpu}

        sync("first sync")
        sync("nothing new")
        Ingestor(owner).ingest(post(now))
        sync("1 new post")
        Ingestor(owner).ingest(post(now - 3600))
        sync("1 new post dated 1 h back")
        rebuilt = hasattr(open_index(owner), "path")
        rebuild(open_index(owner))
        Ingestor(owner).ingest(post(now))
        sync("owner index rebuilt + 1 new post" if rebuilt else "rebuilt")
    finally:
        proc.kill()
    return out


def cpu_part(tmp: Path, contacts: int) -> dict[str, Any]:
    from app.core.identity.identities import Identities
    from app.core.network.contacts import Contacts
    from app.core.network.sync import sync_all
    from app.core.posts.codec import build_post
    from app.core.posts.ingest import Ingestor

    owner, me = node(tmp / "owners"), node(tmp / "follower")
    ids_o, ids_m = Identities(owner), Identities(me)
    a = ids_m.create("bench-password-x")
    ids_o.import_pub(ids_m.pub_document(a))
    fps = [ids_o.create("bench-password-long") for _ in range(contacts)]
    now = int(time.time())
    for fp in fps:
        seed = ids_o.open_seed(fp, "bench-password-long")
        Ingestor(owner).ingest(build_post(seed, {"CREATED_TIME": now - 60, "TEXT": "hi"}))
        ids_m.import_pub(ids_o.pub_document(fp))
    proc, address, up, down = start_owner(owner.root)
    try:
        for fp in fps:
            Contacts(me).put(fp, address, a)
        first = sync_all(me, force=True)
        assert all(st.last_error is None for st in first), [st.last_error for st in first]
        rounds = []
        for _ in range(3):
            u0, d0 = up.value, down.value
            c0, t0 = time.process_time(), time.perf_counter()
            results = sync_all(me)
            rounds.append((time.process_time() - c0, time.perf_counter() - t0,
                           up.value - u0 + down.value - d0))
            assert sum(st.posts_last_run for st in results) == 0
    finally:
        proc.kill()
    cpu, wall, wire = sorted(rounds)[1]  # the median round by CPU
    return {"contacts": contacts, "cpu ms per contact": 1000 * cpu / contacts,
            "wall s": wall, "bytes per contact": wire / contacts}


def measure(args: argparse.Namespace) -> dict[str, Any]:
    os.environ["DIWAN_INSECURE_KDF"] = "1"  # throw-away keys: the minimum Argon2id cost
    with tempfile.TemporaryDirectory(prefix="bench-cursor-") as tmp:
        return {"bytes": bytes_part(Path(tmp) / "b", args.posts),
                "cpu": cpu_part(Path(tmp) / "c", args.contacts)}


def run_in(repo: Path, args: argparse.Namespace) -> dict[str, Any]:
    got = subprocess.run([sys.executable, __file__, "--posts", str(args.posts), "--contacts",
                          str(args.contacts), "--json", "--repo", str(repo)],
                         check=True, capture_output=True, text=True, cwd=repo)
    return json.loads(got.stdout.strip().splitlines()[-1])


def commit(repo: Path) -> str:
    return subprocess.run(["git", "-C", str(repo), "log", "-1", "--format=%h %s"],
                          capture_output=True, text=True).stdout.strip()[:60]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=10000)
    parser.add_argument("--contacts", type=int, default=200)
    parser.add_argument("--against", type=Path, help="another checkout, measured in the same run")
    parser.add_argument("--repo", type=Path, default=HERE.parent, help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.json:
        _repo_on_path(args.repo)
        print(json.dumps(measure(args)))
        return
    print(f"load average: {os.getloadavg()[0]:.2f}; nproc {len(os.sched_getaffinity(0))}; "
          f"{args.posts} posts, {args.contacts} contacts")
    runs = {"this checkout": (HERE.parent, run_in(HERE.parent, args))}
    if args.against:
        runs["against"] = (args.against, run_in(args.against, args))
    for name, (repo, got) in runs.items():
        print(f"\n{name}: {commit(repo)}\n")
        print("| sync | posts stored | bytes up | bytes down | wall s | CPU s follower / owner |")
        print("| --- | --- | --- | --- | --- | --- |")
        for what, r in got["bytes"].items():
            print(f"| {what} | {r['posts']} | {r['up']:,} | {r['down']:,} | {r['seconds']:.2f} "
                  f"| {r['cpu']:.2f} / {r['owner cpu']:.2f} |")
        c = got["cpu"]
        print(f"\nnothing new, {c['contacts']} contacts: {c['cpu ms per contact']:.2f} ms CPU "
              f"per contact (follower side), {c['bytes per contact']:,.0f} bytes per contact, "
              f"round {c['wall s']:.2f} s")
    mine = runs["this checkout"][1]
    first = mine["bytes"]["first sync"]
    for what, r in mine["bytes"].items():
        if what != "first sync":
            share = (r["up"] + r["down"]) / (first["up"] + first["down"])
            print(f"{what}: {100 * share:.2f} % of the first sync's bytes")
    if args.against:
        other = runs["against"][1]
        theirs = other["bytes"]["first sync"]
        cpu_ratio = (first["cpu"] + first["owner cpu"]) / (theirs["cpu"] + theirs["owner cpu"])
        print(f"first sync wall time, this / against: "
              f"{first['seconds'] / theirs['seconds']:.2f}x; its CPU (follower + owner), "
              f"this / against: {cpu_ratio:.2f}x; CPU per contact, this / against: "
              f"{mine['cpu']['cpu ms per contact'] / other['cpu']['cpu ms per contact']:.2f}x")


if __name__ == "__main__":
    main()
