"""CPU per post of a per-feed ingest with the index: the ingesting process and its helpers.

Wall-clock rates on a shared machine move with the neighbours; CPU seconds per post
say where the work goes. Runs ``bench_ingest.ingest_rate`` (10,000 posts over 100
authors, per-feed batches of 500, with the index) three times and prints, per run,
posts/s and the user and system CPU µs per post of this process (``getrusage``) and
of the signature-check helper processes (``/proc/<pid>/stat``). ``CHECKOUT`` is the
repository whose ``bench/bench_ingest.py`` and ``app`` are measured (put it first on
``PYTHONPATH`` for another checkout, e.g. an older commit):

    .venv/bin/python bench/bench_ingest_cpu.py . bench/out/cpu
    PYTHONPATH=/tmp/old .venv/bin/python bench/bench_ingest_cpu.py /tmp/old bench/out/cpu-old
"""

from __future__ import annotations

import importlib
import os
import resource
import shutil
import sys
from pathlib import Path


def cpu_of(pids: list[int]) -> tuple[float, float]:
    """User and system CPU seconds of ``pids`` so far."""
    tick = os.sysconf("SC_CLK_TCK")
    user = system = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        user += int(fields[11]) / tick
        system += int(fields[12]) / tick
    return user, system


def main() -> None:
    checkout, out = Path(sys.argv[1]).resolve(), Path(sys.argv[2])
    sys.path.insert(0, str(checkout / "bench"))
    b = importlib.import_module("bench_ingest")
    common = importlib.import_module("common")
    people = common.authors(100, 1)
    raws = b.build(10_000, people, 1)
    by_feed = sorted(raws, key=lambda raw: raw.split(b".")[1])
    helpers: list[int] = []
    try:
        verifyprocs = importlib.import_module("app.core.base.verifyprocs")
        helpers = verifyprocs.pool(2).pids()  # type: ignore[union-attr]
        label = "helpers"
    except ImportError:
        label = "before helpers"
    for k in range(3):  # a new directory each run, all deleted at the end (see
        #                 common.RECENTLY_DELETED: a create after a deletion pays for it)
        own, theirs = resource.getrusage(resource.RUSAGE_SELF), cpu_of(helpers)
        rate, _ = b.ingest_rate(out / f"run{k}", by_feed, people, 500, True)
        after, theirs2 = resource.getrusage(resource.RUSAGE_SELF), cpu_of(helpers)
        print(f"{label}: {rate:,.0f} posts/s; CPU µs per post: ingesting process user "
              f"{(after.ru_utime - own.ru_utime) * 100:.0f} system "
              f"{(after.ru_stime - own.ru_stime) * 100:.0f}; helpers user "
              f"{(theirs2[0] - theirs[0]) * 100:.0f} system {(theirs2[1] - theirs[1]) * 100:.0f}"
              f"; load average {os.getloadavg()[0]:.2f}", flush=True)
    shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
