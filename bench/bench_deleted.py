"""The kernel's cost of creating a file soon after many files were deleted.

On ext4 without a journal (this VM's disk: no ``/proc/fs/jbd2/<disk>``), the inode
allocator skips every free inode whose deletion is less than 60 s old (300 s more while
its inode table block is unwritten), one buffer lookup each (``recently_deleted`` in
``find_inode_bit``, fs/ext4/ialloc.c), so each new file can cost a scan of all recent
deletions in its block group. A bench that deletes its files between measures makes the
next measure pay for them. This script shows it: it creates ``--files`` small files the
way the ingest's helpers do (an unnamed ``O_TMPFILE`` file, its mtime, a no-replace
``linkat``; one ``syncfs`` per 500) in a new folder, ``--rounds`` times, first keeping
every folder, then deleting each before the next, and prints the kernel (system) CPU per
file and the rate of each round. It deletes every file it made when it ends, so the next bench
run within 5 minutes pays for them: wait.

    .venv/bin/python bench/bench_deleted.py
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import common  # noqa: E402

from app.core.base.fsio import link_fd, syncfs  # noqa: E402


def create(folder: Path, files: int, data: bytes) -> tuple[float, float]:
    """Files/s and kernel µs per file of creating ``files`` posts' files in ``folder``."""
    folder.mkdir()
    before, started = os.times().system, time.perf_counter()
    for i in range(files):
        fd = os.open(folder, os.O_WRONLY | os.O_TMPFILE, 0o600)
        os.write(fd, data)
        os.utime(fd, (1, 1))
        link_fd(fd, os.path.join(folder, f"{i:040x}"))  # the helpers' own no-replace link
        os.close(fd)
        if i % 500 == 499:
            syncfs(folder)
    seconds = time.perf_counter() - started
    return files / seconds, (os.times().system - before) / files * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=5000)
    ap.add_argument("--rounds", type=int, default=4)
    args = ap.parse_args()
    print(f"machine: {common.machine()}")
    common.OUT.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(dir=common.OUT, prefix="deleted-"))
    print(common.create_cost(root), flush=True)  # a high cost now spoils the comparison
    data = os.urandom(600)
    rows = []
    try:
        for deleting in (False, True):
            for k in range(args.rounds):
                folder = root / f"{'deleting' if deleting else 'keeping'}{k}"
                rate, us = create(folder, args.files, data)
                rows.append(["each folder deleted before the next" if deleting
                             else "every folder kept", k + 1, f"{rate:,.0f}", f"{us:.0f}"])
                if deleting:
                    shutil.rmtree(folder)
                    os.sync()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(common.table(["folders", "round", "files/s", "kernel µs per file"], rows))
    print(common.RECENTLY_DELETED)


if __name__ == "__main__":
    main()
