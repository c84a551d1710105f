"""Shared helpers for the bench scripts: deterministic authors and posts, timing, tables.

Everything is local (files under ``bench/out/`` by default, git-ignored); no network.
"""

from __future__ import annotations

import hashlib
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from app.core.base import crypto  # noqa: E402
from app.core.base.encoding import b64d, b64e  # noqa: E402
from app.core.identity import keys  # noqa: E402
from app.core.posts.codec import Post, encode_payload  # noqa: E402

OUT = ROOT / "bench" / "out"
T0 = 1_700_000_000  # CREATED_TIME of the first generated post
EMOJI = ["\U0001f44d", "\u2764\ufe0f", "\U0001f602", "\U0001f389"]
WORDS = ("salam marhaba diwan feed post garden river bread tea market poem letter sun "
         "moon friend city village road book music story morning evening").split()


@dataclass(frozen=True)
class Author:
    seed: bytes
    fp: str
    pub: bytes

    @property
    def public_key(self) -> bytes:
        """The 32-byte Ed25519 public key of ``pub`` (its second line, after ``key: ``)."""
        return b64d(self.pub.split(b"\n")[1][5:])


@dataclass(frozen=True)
class BenchPost:
    """The metadata the index keeps (taken from a real decoded ``Post``)."""

    sha1: str
    author: str
    created: int
    kind: str
    recipients: frozenset[str]
    replies_to: tuple[str, ...]
    is_reaction: bool
    reshared: str | None


def authors(m: int, seed: int = 1) -> list[Author]:
    """``m`` deterministic identities (no private key files: no Argon2 cost)."""
    out = []
    for i in range(m):
        s = hashlib.sha256(f"diwan-bench/{seed}/author/{i}".encode()).digest()
        t = hashlib.sha256(f"diwan-bench/{seed}/transport/{i}".encode()).digest()
        pub = keys.certify(s, crypto.transport_public(t))
        out.append(Author(s, pub.fingerprint, pub.to_bytes()))
    return out


def write_pubs(identities: Path, people: Iterable[Author]) -> None:
    identities.mkdir(parents=True, exist_ok=True)
    for a in people:
        (identities / f"{a.fp}.pub").write_bytes(a.pub)


def _text(rng: random.Random) -> str:
    return " ".join(rng.choices(WORDS, k=rng.randint(8, 30)))


def sign_post(author: Author, attrs: dict[str, Any]) -> Post:
    """What ``posts.build_post`` does, minus re-validating our own well-formed attributes
    and re-deriving the fingerprint for every post (the generator makes millions)."""
    p1 = b64e(encode_payload(attrs))
    sig = crypto.sign(author.seed, crypto.CTX_POST, p1.encode("ascii"))
    raw = f"{p1}.{author.fp}.{b64e(sig)}".encode("ascii")
    return Post(raw, hashlib.sha1(raw).hexdigest(), author.fp, p1, sig, attrs)


def attributes_for(rng: random.Random, created: int, people: Sequence[Author], me: Author,
                   earlier: list[tuple[str, str, bytes]]) -> dict[str, Any]:
    """A mix of kinds: ~75% public posts, 12% comments, 8% messages, 3% reshares, 2% profiles.

    ``earlier`` holds (sha1, author fp, raw) of public posts made before this one.
    """
    roll = rng.random()
    attrs: dict[str, Any] = {"CREATED_TIME": created}
    if roll < 0.12 and earlier:
        sha1, to, _ = rng.choice(earlier)
        attrs.update(REPLY_POSTSHA=sha1, TO_FINGERPRINT=to,
                     TEXT=rng.choice(EMOJI) if rng.random() < 0.3 else _text(rng))
    elif roll < 0.20:
        for n, other in enumerate(rng.sample(people, min(len(people), rng.randint(1, 3)))):
            attrs[f"TO{n}_FINGERPRINT"] = other.fp
        attrs["TEXT"] = _text(rng)
    elif roll < 0.23 and earlier:
        attrs.update(SHARED_POST=rng.choice(earlier)[2].decode("ascii"), TEXT=_text(rng))
    elif roll < 0.25:
        attrs.update(PROFILENAME=f"Person {me.fp[:6]}",
                     BIRTHDATE=f"1990-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}",
                     HOME_PHONE=f"+20 100 {rng.randrange(10**7):07d}")
        if rng.random() < 0.5:
            attrs["FOR_FINGERPRINT"] = rng.choice(people).fp
    else:
        attrs["TEXT"] = _text(rng)
    return attrs


def make_posts(chunk: int, first: int, count: int, people: Sequence[Author], seed: int,
               ties: int) -> list[tuple[bytes, BenchPost]]:
    """Posts ``first .. first+count-1`` (deterministic per seed); ``ties`` share a second."""
    rng = random.Random(f"{seed}/{chunk}")
    earlier: list[tuple[str, str, bytes]] = []
    out = []
    for i in range(first, first + count):
        me = people[rng.randrange(len(people))]
        post = sign_post(me, attributes_for(rng, T0 + i // ties, people, me, earlier))
        if not post.recipients and post.reshared is None and len(earlier) < 200:
            earlier.append((post.sha1, post.author, post.raw))
        out.append((post.raw, BenchPost(post.sha1, post.author, post.created, post.kind,
                                   post.recipients, post.replies_to, post.is_reaction,
                                   post.reshared)))
    return out


# --- measuring ---------------------------------------------------------------------------

def percentile(values: Sequence[float], p: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def summary_ms(samples: Sequence[float]) -> tuple[float, float]:
    """(median, p95) in milliseconds of samples in seconds."""
    return statistics.median(samples) * 1000, percentile(samples, 95) * 1000


def disk_usage(path: Path) -> tuple[int, int, int]:
    """(files, bytes allocated on disk, apparent bytes) under ``path``."""
    files = allocated = apparent = 0
    stack = [path]
    while stack:
        with os.scandir(stack.pop()) as entries:
            for e in entries:
                if e.is_dir(follow_symlinks=False):
                    stack.append(Path(e.path))
                else:
                    st = e.stat(follow_symlinks=False)
                    files += 1
                    allocated += st.st_blocks * 512
                    apparent += st.st_size
    return files, allocated, apparent


def human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A GitHub-flavoured Markdown table (pastes straight into the README)."""
    body = [[str(c) for c in r] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in body)) if body else len(h)
              for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    return "\n".join([line(headers), "|" + "|".join("-" * (w + 2) for w in widths) + "|",
                      *(line(r) for r in body)])


def machine() -> str:
    import platform

    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python " \
           f"{platform.python_version()}"


def cpu_jiffies() -> list[int]:
    """Every CPU's time so far, in clock ticks (``/proc/stat``'s first line): user, nice,
    system, idle, iowait, irq, softirq, steal."""
    with open("/proc/stat") as f:
        return [int(x) for x in f.readline().split()[1:9]]


def busy_ticks(before: Sequence[int], after: Sequence[int]) -> tuple[int, int]:
    """Between two :func:`cpu_jiffies` readings: (clock ticks every CPU was busy, ticks
    available), both without the hypervisor's steal (never this machine's work); busy is
    neither idle nor waiting for I/O. ``available`` is at least 1."""
    spent = [b - a for a, b in zip(before, after, strict=True)]
    available = max(1, sum(spent) - spent[7])
    return available - spent[3] - spent[4], available


def schedstat(path: str) -> tuple[int, int]:
    """(ns on a CPU, ns runnable and waiting for one) of the thread or process whose
    ``/proc/<pid>[/task/<tid>]`` is ``path`` (its ``schedstat``)."""
    with open(f"{path}/schedstat") as f:
        on_cpu, waiting = f.read().split()[:2]
    return int(on_cpu), int(waiting)


RECENTLY_DELETED = (
    "Measured files are deleted only when the bench ends: on ext4 without a journal (this "
    "VM's disk) the kernel skips every inode freed in the last 60-300 s when it allocates "
    "one (fs/ext4/ialloc.c, recently_deleted), so creating files soon after deleting many "
    "costs up to ~20 times the kernel time. Leave 5 minutes between bench runs.")


def create_cost(root: Path, files: int = 2000) -> str:
    """A line giving the time to create one empty file in a new folder under ``root`` now
    (wall clock, and the kernel's share: system CPU, counted in 10 ms ticks, so ``files``
    must be large enough), with a warning when it is high (:data:`RECENTLY_DELETED`).
    The files stay for the caller to delete at the end."""
    folder = Path(tempfile.mkdtemp(dir=root, prefix="probe-"))
    before, started = os.times().system, time.perf_counter()
    for i in range(files):
        os.close(os.open(folder / f"f{i}", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
    wall = (time.perf_counter() - started) / files * 1e6
    kernel = (os.times().system - before) / files * 1e6
    warn = ("" if kernel < 100 else "; HIGH: many files were deleted in the last minutes, "
            "so every figure that creates files is low. Wait 5 minutes and run again.")
    return (f"time to create a file now: {wall:.0f} µs, {kernel:.0f} µs of it in the kernel "
            f"(a settled file system: ~20-40){warn}")


def create_syncfs_rate(root: Path, raws: list[bytes], batch: int) -> float:
    """The disk's ceiling: create+write+close the same files, one syncfs per batch, in a
    new folder under ``root``. The files are left for the caller to delete when every
    measure is done (:data:`RECENTLY_DELETED`)."""
    from app.core.base.fsio import syncfs

    root.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(dir=root))
    os.sync()
    started = time.perf_counter()
    for start in range(0, len(raws), batch):
        for i, raw in enumerate(raws[start:start + batch], start):
            fd = os.open(folder / f"f{i}", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            os.write(fd, raw)
            os.close(fd)
        syncfs(folder)
    return len(raws) / (time.perf_counter() - started)  # the files stay: see RECENTLY_DELETED
