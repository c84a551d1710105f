"""The malloc arena limit (app/core/base/mallocarenas.py): eight threads allocating at
once make several arenas with glibc's default and at most the limit with it set; the
gunicorn masters and the scheduler set it from ``malloc_arena_max``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from app.core.base import mallocarenas

ROOT = Path(__file__).resolve().parents[3]

_THREADS = """
import ctypes, os, sys, tempfile, threading
from app.core.base import mallocarenas

def arenas():  # glibc's malloc_info: one <heap nr=...> per arena made so far
    libc = ctypes.CDLL(None)
    if not hasattr(libc, "malloc_info"):
        return None
    libc.fdopen.restype = ctypes.c_void_p
    libc.fdopen.argtypes = [ctypes.c_int, ctypes.c_char_p]
    libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
    libc.fclose.argtypes = [ctypes.c_void_p]
    with tempfile.TemporaryFile() as out:
        stream = libc.fdopen(os.dup(out.fileno()), b"w")
        libc.malloc_info(0, stream)
        libc.fclose(stream)
        out.seek(0)
        return out.read().decode("ascii", "replace").count("<heap nr=")

if arenas() is None:
    print("none"); raise SystemExit
mallocarenas.limit(int(sys.argv[1]))
barrier = threading.Barrier(8)
def work():
    barrier.wait()
    for _ in range(30):
        kept = [bytearray(1000) for _ in range(3000)]
        del kept
threads = [threading.Thread(target=work) for _ in range(8)]
for t in threads: t.start()
for t in threads: t.join()
print(arenas())
"""


def _arenas_after_threads(limit: int) -> int:
    out = subprocess.run([sys.executable, "-c", _THREADS, str(limit)], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout.strip()
    if out == "none":
        pytest.skip("not glibc: no malloc_info")
    return int(out)


def test_eight_threads_use_at_most_the_limit() -> None:
    assert _arenas_after_threads(0) > 2  # glibc's default: arenas of their own
    assert _arenas_after_threads(2) <= 2
    assert _arenas_after_threads(1) == 1


def test_zero_leaves_the_default() -> None:
    assert mallocarenas.limit(0) is False


def test_the_node_processes_set_it_from_the_setting() -> None:
    conf = (ROOT / "app/run/gunicorn_conf.py").read_text()
    assert 'mallocarenas.limit(_settings["malloc_arena_max"])' in conf
    worker = (ROOT / "scheduler/worker.py").read_text()
    assert 'mallocarenas.limit(dd.settings["malloc_arena_max"])' in worker
