"""Real Diwan nodes for integration tests: the Procfile's processes on free loopback ports.

A :class:`Node` owns one data directory. ``start()`` picks two free
127.0.0.1 ports, writes them (and ``peer_host = "127.0.0.1"``, the worker and
thread counts and any extra settings) into the directory's ``diwan.toml``, then
runs every line of the repository's ``Procfile`` with ``bash -c`` in the data
directory, as the node's owner would with ``honcho start``: admin and peer
gunicorn and the scheduler, each in its own process group, their output in
``<data dir>/logs/<name>.log``. It waits until both ``/health`` endpoints answer
and the scheduler has written ``state/scheduler.alive``.

Several nodes can run at once, each with its own directory and ports::

    with Node(tmp_path / "alice", "alice") as alice, Node(tmp_path / "bob", "bob") as bob:
        fp = alice.admin("POST", "/identities", json={"password": "a long password"}
                     ).json()["fingerprint"]
        doc = alice.peer("GET", f"/identities/{fp}").text
        bob.admin("POST", "/identities", json={"public_key": doc})

Nothing here mocks anything: real processes, real files, real HTTP on 127.0.0.1.
"""

from __future__ import annotations

import atexit
import json
import os
import signal
import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import requests

from app.core.base.config import INSECURE_KDF_ENV, insecure_kdf

REPO = Path(__file__).resolve().parents[2]
PROCFILE = REPO / "app" / "run" / "Procfile"  # what diwan up runs
VENV_BIN = Path(sys.prefix) / "bin"
LOOPBACK = "127.0.0.1"
_handed_out: set[int] = set()
_running: set[Node] = set()  # stopped at interpreter exit if a test run is cut short


class NodeError(RuntimeError):
    """A node did not start or stop as expected (the message carries its log tails)."""


def parse_procfile(path: Path = PROCFILE) -> dict[str, str]:
    """``{name: command}`` for every ``name: command`` line (comments and blanks skipped)."""
    entries: dict[str, str] = {}
    for line in path.read_text("utf-8").splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, sep, command = line.partition(":")
        if not sep or not name.strip() or not command.strip():
            raise ValueError(f"bad Procfile line: {line!r}")
        entries[name.strip()] = command.strip()
    return entries


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now, never handed out before by this process."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((LOOPBACK, 0))
            port = int(s.getsockname()[1])
        if port not in _handed_out:
            _handed_out.add(port)
            return port


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return json.dumps(str(value))  # a TOML basic string


class Node:
    """One Diwan node (admin + peer + scheduler) in ``root``, run from the Procfile."""

    def __init__(self, root: Path, name: str = "node", *, workers: int = 1, threads: int = 4,
                 settings: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None,
                 procfile: Path = PROCFILE, start_timeout: float = 30.0) -> None:
        self.root = Path(root).resolve()
        self.name = name
        self.settings: dict[str, Any] = {"peer_host": LOOPBACK, "admin_host": LOOPBACK,
                                         "workers": workers, "threads": threads,
                                         "lan_discovery": False,
                                         **(settings or {})}
        self.extra_env = dict(env or {})
        self.procfile = procfile
        self.start_timeout = start_timeout
        self.admin_port: int | None = None
        self.peer_port: int | None = None
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.session = requests.Session()
        self._started_at = 0.0
        self._log_offsets: dict[str, int] = {}

    # --- addresses and files ---------------------------------------------------------
    @property
    def admin_url(self) -> str:
        return f"http://{LOOPBACK}:{self.admin_port}"

    @property
    def peer_url(self) -> str:
        return f"http://{LOOPBACK}:{self.peer_port}"

    @property
    def log_dir(self) -> Path:
        return self.root / "logs"

    @property
    def token(self) -> str:
        return (self.root / "admin.token").read_text("ascii").strip()

    def log(self, name: str) -> str:
        path = self.log_dir / f"{name}.log"
        return path.read_text("utf-8", "replace") if path.exists() else ""

    def __repr__(self) -> str:
        return f"<Node {self.name} admin={self.admin_url} peer={self.peer_url} root={self.root}>"

    # --- HTTP ------------------------------------------------------------------------
    def admin(self, method: str, path: str, *, auth: bool = True, **kw: Any) -> requests.Response:
        """A request to the admin API, with the bearer token unless ``auth=False``."""
        headers = dict(kw.pop("headers", None) or {})
        if auth:
            headers.setdefault("Authorization", f"Bearer {self.token}")
        kw.setdefault("timeout", 30)
        return self.session.request(method, self.admin_url + path, headers=headers, **kw)

    def peer(self, method: str, path: str, **kw: Any) -> requests.Response:
        kw.setdefault("timeout", 30)
        return self.session.request(method, self.peer_url + path, **kw)

    # --- life cycle ------------------------------------------------------------------
    def start(self, *, wait: bool = True) -> Node:
        """Configure ports and start every Procfile process; with ``wait``, until ready."""
        if self.procs:
            raise NodeError(f"{self.name} is already running")
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.log_dir.mkdir(exist_ok=True)
        _running.add(self)
        for attempt in range(3):
            self._write_config(new_ports=attempt > 0)
            self._started_at = time.time()
            for name, command in parse_procfile(self.procfile).items():
                self._spawn(name, command)
            if not wait:
                return self
            try:
                return self.wait_ready()
            except NodeError as exc:
                self.stop()
                if "port taken" not in str(exc) or attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def wait_ready(self, timeout: float | None = None) -> Node:
        """Wait for both /health endpoints and the scheduler's heartbeat."""
        deadline = time.monotonic() + (timeout or self.start_timeout)
        while time.monotonic() < deadline:
            self._check_running()
            if self._healthy():
                return self
            time.sleep(0.05)
        raise NodeError(f"{self.name} not ready in time\n{self._log_tails()}")

    def stop(self, timeout: float = 10.0, *, sig: int = signal.SIGINT) -> None:
        """Stop every process (``sig``, then SIGKILL); also reaps orphaned workers.

        SIGINT is gunicorn's quick shutdown (the scheduler stops on it too);
        pass ``sig=signal.SIGTERM`` for the graceful one.
        """
        self.request_stop(sig)
        self.reap(timeout)

    def request_stop(self, sig: int = signal.SIGINT) -> None:
        """Signal every process to stop without waiting (see :func:`stop_all`)."""
        self.session.close()
        for proc in self.procs.values():
            _signal_group(proc.pid, sig)

    def reap(self, timeout: float = 10.0) -> None:
        """Wait for the processes to exit, SIGKILL-ing what is left after ``timeout``."""
        deadline = time.monotonic() + timeout
        for proc in self.procs.values():
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(proc.pid, signal.SIGKILL)
                proc.wait(5)
            _signal_group(proc.pid, signal.SIGKILL)  # any worker left behind
        self.procs.clear()
        _running.discard(self)
        self.session = requests.Session()

    def restart(self) -> Node:
        """Stop and start again on the same ports and directory."""
        self.stop()
        return self.start()

    def kill(self, name: str, sig: int = signal.SIGKILL, *, group: bool = False) -> None:
        """Send ``sig`` to process ``name``'s main process (gunicorn master), or its group."""
        proc = self.procs[name]
        if group:
            _signal_group(proc.pid, sig)
        else:
            os.kill(self.main_pid(name), sig)

    def main_pid(self, name: str) -> int:
        """The pid of the Procfile command itself (bash execs it, but do not rely on that)."""
        pid = self.procs[name].pid
        try:
            comm = Path(f"/proc/{pid}/comm").read_text().strip()
            if comm == "bash":
                children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
                if children:
                    return int(children[0])
        except OSError:
            pass
        return pid

    def group_pids(self, name: str) -> list[int]:
        """Every live process in ``name``'s process group (master and workers)."""
        pgid = self.procs[name].pid
        pids = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    if os.getpgid(int(entry.name)) == pgid:
                        pids.append(int(entry.name))
                except (ProcessLookupError, PermissionError):
                    continue
        return sorted(pids)

    def alive(self, name: str) -> bool:
        return name in self.procs and self.procs[name].poll() is None

    def wait_exit(self, name: str, timeout: float = 10.0) -> int:
        return self.procs[name].wait(timeout)

    def __enter__(self) -> Node:
        if not self.procs:
            self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # --- internals ---------------------------------------------------------------------
    def _write_config(self, *, new_ports: bool = False) -> None:
        path = self.root / "diwan.toml"
        current: dict[str, Any] = tomllib.loads(path.read_text()) if path.exists() else {}
        if new_ports:
            self.admin_port, self.peer_port = free_port(), free_port()
        elif self.admin_port is None:
            # a port from an earlier run of this node is kept; the shipped defaults
            # (8888/8889, written by `diwan init`) never are: two nodes would share them
            admin, peer = int(current.get("admin_port") or 0), int(current.get("peer_port") or 0)
            self.admin_port = admin if admin not in (0, 8888) else free_port()
            self.peer_port = peer if peer not in (0, 8889) else free_port()
        wanted = {**current, **self.settings, "admin_port": self.admin_port,
                  "peer_port": self.peer_port}
        text = "".join(f"{key} = {_toml_value(value)}\n" for key, value in wanted.items())
        tmp = path.with_name(".tmp-diwan.toml")
        tmp.write_text(f"# written by tests/integration/harness.py for node {self.name}\n" + text)
        os.replace(tmp, path)

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DIWAN_")}
        env.update(DIWAN_ROOT=str(REPO), DIWAN_DATA_DIR=str(self.root),
                   PATH=f"{VENV_BIN}{os.pathsep}{env.get('PATH', '/usr/bin:/bin')}",
                   PYTHONPATH=os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH"))
                                              if p),
                   VIRTUAL_ENV=sys.prefix, PYTHONUNBUFFERED="1")
        if insecure_kdf():  # the suite's switch (tests/conftest.py) reaches real processes
            env[INSECURE_KDF_ENV] = "1"
        env.update(self.extra_env)
        return env

    def _spawn(self, name: str, command: str) -> None:
        with open(self.log_dir / f"{name}.log", "ab") as log:
            self._log_offsets[name] = log.tell()
            log.write(f"--- {time.strftime('%H:%M:%S')} starting: {command}\n".encode())
            log.flush()
            self.procs[name] = subprocess.Popen(
                ["bash", "-c", command], cwd=self.root, env=self._env(), stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def _check_running(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise NodeError(f"{self.name}: {name} exited with {proc.returncode}\n"
                                f"{self._log_tails()}")
            if name in ("admin", "peer") and "in use" in self.log(name)[self._log_offsets[name]:]:
                raise NodeError(f"{self.name}: {name} port taken\n{self._log_tails()}")

    def _healthy(self) -> bool:
        for url in (self.admin_url, self.peer_url):
            try:
                if requests.get(url + "/health", timeout=1).status_code != 200:
                    return False
            except requests.RequestException:
                return False
        if "scheduler" in self.procs:
            alive = self.root / "state" / "scheduler.alive"
            try:
                return alive.stat().st_mtime >= self._started_at
            except FileNotFoundError:
                return False
        return True

    def _log_tails(self, lines: int = 25) -> str:
        out = []
        for name in self.procs:
            tail = "\n".join(self.log(name).splitlines()[-lines:])
            out.append(f"--- {name} ({self.log_dir / (name + '.log')}):\n{tail}")
        return "\n".join(out)


def start_all(nodes: Iterable[Node]) -> list[Node]:
    """Start several nodes at once (their processes boot in parallel)."""
    started = [node.start(wait=False) for node in nodes]
    for node in started:
        node.wait_ready()
    return started


def stop_all(nodes: Iterable[Node], timeout: float = 10.0) -> None:
    """Stop several nodes at once."""
    nodes = list(nodes)
    for node in nodes:
        node.request_stop()
    for node in nodes:
        node.reap(timeout)


@atexit.register
def _stop_leftovers() -> None:
    stop_all(list(_running), timeout=5)


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass
