"""The README's recipes work verbatim (README "How the recipes below are tested").

The ``sh`` blocks preceded by ``<!-- test: NAME -->`` are joined in order and run as
one bash script (``set -euo pipefail``) in an empty temporary directory outside the
checkout, with ``HOME`` and ``DIWAN_HOME`` there and free 127.0.0.1 ports given
through the environment; the ``text`` blocks preceded by ``<!-- prints: NAME -->``
must match the output's lines in order (``…`` stands for anything). Whatever the
script leaves running is stopped with ``diwan stop`` afterwards.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
MARKED = re.compile(r"<!-- (test|prints): ([\w-]+) -->\n```(\w+)\n(.*?)```", re.S)


def blocks(text: str, kind: str, name: str) -> list[str]:
    """The bodies of the fenced blocks marked ``<!-- kind: name -->``, in order."""
    return [body for k, n, _, body in MARKED.findall(text) if (k, n) == (kind, name)]


def pattern(line: str) -> re.Pattern[str]:
    """A regex for one expected line: literal text, ``…`` matching anything."""
    return re.compile(".*".join(re.escape(part) for part in line.strip().split("…")) + r"\Z")


def unmatched(expected: list[str], output: list[str]) -> list[str]:
    """The expected lines not found, in order, among the output lines (empty: all found)."""
    lines = iter(line.strip() for line in output)
    for i, want in enumerate(expected):
        rx = pattern(want)
        if not any(rx.match(got) for got in lines):
            return expected[i:]
    return []


def free_ports(count: int, spacing: int = 1) -> int:
    """A base port such that base+1 … base+count*spacing are all free on 127.0.0.1."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = s.getsockname()[1] - 1
        if base + count * spacing > 65000:
            continue
        try:
            for port in range(base + 1, base + count * spacing + 1):
                with socket.socket() as probe:
                    probe.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base
    pytest.fail("no free range of ports on 127.0.0.1")


def diwan_bin() -> Path:
    return Path(sys.executable).parent


def run_recipe(name: str, tmp_path: Path, env_extra: dict[str, str]) -> None:
    text = README.read_text(encoding="utf-8")
    script = "".join(blocks(text, "test", name))
    expected = [line for body in blocks(text, "prints", name) for line in body.splitlines()]
    assert script and expected, f"README.md has no blocks marked for {name!r}"
    home, cwd = tmp_path / "home", tmp_path / "cwd"
    home.mkdir()
    cwd.mkdir()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("DIWAN_") and k not in ("PYTHONPATH", "PORT")}
    env.update(HOME=str(home), DIWAN_HOME=str(home / "diwan"), **env_extra,
               PATH=os.pathsep.join([str(diwan_bin()), env.get("PATH", "")]))
    try:
        done = subprocess.run(["bash", "-c", "set -euo pipefail\n" + script], cwd=cwd, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              timeout=150)
    finally:
        for toml in (home / "diwan").glob("*/diwan.toml"):
            subprocess.run([str(diwan_bin() / "diwan"), "--data-dir", str(toml.parent), "stop"],
                           env=env, capture_output=True, timeout=60)
    logs = "".join(f"\n--- {log}\n{log.read_text()}" for log in home.glob("diwan/*/up.log"))
    assert done.returncode == 0, f"exit {done.returncode}:\n{done.stdout}{logs}"
    missing = unmatched(expected, done.stdout.splitlines())
    assert not missing, (f"README.md says {name} prints\n  {missing[0]!r}\n(and what follows)"
                         f" but it printed:\n{done.stdout}")
    assert not list(ROOT.glob("*/admin.token")) and not (ROOT / "admin.token").exists()


def test_quick_start_runs_as_written(tmp_path: Path) -> None:
    base = free_ports(2)
    run_recipe("quickstart", tmp_path, {"DIWAN_ADMIN_PORT": str(base + 1),
                                        "DIWAN_PEER_PORT": str(base + 2),
                                        "DIWAN_PEER_HOST": "127.0.0.1"})


def test_three_people_recipe_runs_as_written(tmp_path: Path) -> None:
    run_recipe("three-people", tmp_path, {"PORT": str(free_ports(22))})


def test_expected_output_matching_can_fail() -> None:
    assert unmatched(["a … c", "d"], ["x", "a b c", "d"]) == []
    assert unmatched(["d", "a … c"], ["a b c", "d"]) == ["a … c"]
    assert unmatched(["a"], ["ab"]) == ["a"]
