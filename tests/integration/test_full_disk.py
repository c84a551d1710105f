"""A real node on a small, really full file system (a tmpfs this test mounts; needs root).

Writes answer 507 with a JSON error naming the data directory and its free
space, reads keep working, nothing is torn, and the node carries on by itself
once space is freed. Skipped without root (the message says so); CI=true
turns the skip into a failure, since CI runs as root.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.core.base.fsio import is_temp_name

from .harness import Node

PW = "pw-full-disk"
SIZE = "16m"


def _need_mount() -> None:
    missing = None
    if os.geteuid() != 0:
        missing = "root (to mount a small tmpfs)"
    elif shutil.which("mount") is None or shutil.which("umount") is None:
        missing = "the mount and umount commands"
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must run the full-disk test, but it lacks {missing}")
        pytest.skip(f"needs {missing}")


class SmallNode(Node):
    """Logs go beside the data directory, not onto the small file system."""

    @property
    def log_dir(self) -> Path:
        return self.root.parent / f"{self.name}-logs"


@pytest.fixture
def mounted(tmp_path: Path) -> Iterator[Path]:
    _need_mount()
    root = tmp_path / "node"
    root.mkdir(mode=0o700)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={SIZE},mode=0700", "tmpfs", str(root)],
                   check=True)
    try:
        yield root
    finally:
        subprocess.run(["umount", "-l", str(root)], check=False)


def _fill(root: Path) -> Path:
    """A ballast file leaving about 200 KiB free."""
    ballast = root / "ballast"
    free = shutil.disk_usage(root).free
    with open(ballast, "wb") as f:
        f.truncate(0)
        chunk = b"\0" * (1 << 20)
        left = max(0, free - 200 * 1024)
        while left > 0:
            f.write(chunk[:min(left, len(chunk))])
            left -= len(chunk)
    return ballast


def test_a_full_disk_is_a_clear_temporary_state(mounted: Path) -> None:
    node = SmallNode(mounted, "full")
    node.log_dir.mkdir(exist_ok=True)
    with node.start():
        fp = node.admin("POST", "/identities", json={"password": PW}).json()["fingerprint"]
        first = node.admin("POST", "/posts", json={"fingerprint": fp, "password": PW,
                                                    "text": "written before"})
        assert first.status_code == 201, first.text
        ballast = _fill(mounted)
        stored, refused = [first.json()["sha1"]], None
        for i in range(200):
            r = node.admin("POST", "/posts", json={"fingerprint": fp, "password": PW,
                                                   "text": f"{i} " + "x" * 30000})
            if r.status_code != 201:
                refused = r
                break
            stored.append(r.json()["sha1"])
        assert refused is not None, "the file system never filled up"
        assert refused.status_code == 507, refused.text
        body = refused.json()
        assert body["code"] == 507 and body["status"] == "disk_full"
        assert str(mounted) in body["message"] and "free:" in body["message"]

        listed = node.admin("GET", "/posts?limit=1000")          # reads keep working
        assert listed.status_code == 200, listed.text
        assert stored[0] in {p["sha1"] for p in listed.json()["posts"]}
        assert node.admin("GET", f"/posts/{stored[0]}").status_code == 200
        assert node.admin("GET", "/identities").status_code == 200
        assert node.peer("GET", "/health").status_code == 200

        for path in (mounted / "posts").rglob("*"):              # nothing torn
            assert not is_temp_name(path.name), path
            if path.is_file():
                assert hashlib.sha1(path.read_bytes()).hexdigest() == path.name

        ballast.unlink()                                         # space returns
        again = node.admin("POST", "/posts", json={"fingerprint": fp, "password": PW,
                                                   "text": "written after"})
        assert again.status_code == 201, again.text
        listed = {p["sha1"] for p in node.admin("GET", "/posts?limit=1000").json()["posts"]}
        assert set(stored) | {again.json()["sha1"]} <= listed
