"""The installable package: the wheel holds what a node needs and nothing else, and an
installed wheel runs a node from any directory (issue 11, README "Installing").

The wheel is built once per module with ``python -m build --no-isolation`` (sdist, then
the wheel from the sdist, so nothing stale in the checkout can leak in; offline: the
``build``, ``setuptools`` and ``wheel`` of the test extras are used).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import sysconfig
import time
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DIST_INFO = "diwan-0.1.0.dist-info/"
PROCESSES = ("admin", "peer", "scheduler")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    try:
        import build  # noqa: F401
    except ImportError:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip("the 'build' package is missing: pip install -e '.[test]'")
    out = tmp_path_factory.mktemp("dist")
    done = subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out),
                           str(ROOT)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    (found,) = out.glob("diwan-*.whl")
    return found


def node_files() -> set[str]:
    """What the wheel must hold besides its metadata: every module of app/ and scheduler/,
    the Procfile, and templates and static files wherever they are."""
    want = {"app/run/Procfile"}
    for top in ("app", "scheduler"):
        for path in (ROOT / top).rglob("*"):
            rel = path.relative_to(ROOT)
            if "__pycache__" in rel.parts or not path.is_file():
                continue
            if path.suffix == ".py" or {"templates", "static"} & set(rel.parts):
                want.add(rel.as_posix())
    return want


def test_wheel_holds_what_a_node_needs_and_nothing_else(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    files = {n for n in names if not n.startswith(DIST_INFO)}
    assert {"app/run/Procfile", "app/run/gunicorn_conf.py", "scheduler/__main__.py",
            "app/cli/__init__.py"} <= files
    assert sorted(node_files() - files) == [], "missing from the wheel"
    assert sorted(files - node_files()) == [], "in the wheel but not part of a node"
    # Never the checkout's other trees, nor a data directory's files (were one ever made
    # inside the checkout, at its top or in a package).
    data_dir = ("posts", "identities", "state", "logs")
    strays = [n for n in names if n.split("/")[0] in ("tests", "var", "bench", "deploy", "docs",
                                                      *data_dir)
              or n.rsplit("/", 1)[-1] in ("admin.token", "diwan.toml", "Makefile")
              or any(f"/{d}/" in n and not n.endswith(".py") for d in data_dir)]
    assert strays == []
    assert DIST_INFO + "licenses/LICENSE" in names


def test_wheel_metadata_is_complete(wheel: Path) -> None:
    zf = zipfile.ZipFile(wheel)
    meta = Parser().parsestr(zf.read(DIST_INFO + "METADATA").decode())
    assert meta["License-Expression"] == "Apache-2.0"
    assert "Apache License" in zf.read(DIST_INFO + "licenses/LICENSE").decode()
    assert meta["Author"] and meta["Keywords"] and meta["Requires-Python"] == ">=3.11"
    assert any(c.startswith("Programming Language :: Python :: 3.11")
               for c in meta.get_all("Classifier"))
    assert meta["Description-Content-Type"] == "text/markdown"
    assert "diwan = app.cli:main" in zf.read(DIST_INFO + "entry_points.txt").decode()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fresh_venv(where: Path, wheel: Path) -> Path:
    """A new virtual environment with only the wheel installed into it; the dependencies
    come from this test run's environment through a plain path line in a .pth file (not
    the checkout: its editable install is a hook that a path line does not run)."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(where)], check=True)
    python = where / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet",
                    "--no-deps", "--no-index", str(wheel)], check=True, timeout=120)
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()"
                           "['purelib'])"], capture_output=True, text=True, check=True)
    deps = sysconfig.get_paths()["purelib"]
    Path(site.stdout.strip(), "diwan_test_dependencies.pth").write_text(deps + "\n")
    # What 'pip install gunicorn' would have put in the venv's bin (the Procfile runs it).
    shim = where / "bin" / "gunicorn"
    shim.write_text(f"#!{python}\nimport sys\nfrom gunicorn.app.wsgiapp import run\n"
                    "sys.exit(run())\n")
    shim.chmod(0o755)
    return where / "bin"


def status(diwan: Path, env: dict[str, str], cwd: Path) -> dict:  # type: ignore[type-arg]
    done = subprocess.run([str(diwan), "--json", "status"], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)  # type: ignore[no-any-return]


@pytest.mark.integration
def test_installed_wheel_runs_a_node_from_an_empty_directory(wheel: Path,
                                                             tmp_path: Path) -> None:
    bin_dir = fresh_venv(tmp_path / "venv", wheel)
    home = tmp_path / "somewhere"
    home.mkdir()
    checkout_bin = str(Path(sys.executable).parent)
    path = [p for p in os.environ.get("PATH", "").split(os.pathsep) if p != checkout_bin]
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("DIWAN_") and k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    admin, peer = free_port(), free_port()
    env.update(PATH=os.pathsep.join([str(bin_dir), *path]), HOME=str(tmp_path),
               DIWAN_ADMIN_PORT=str(admin), DIWAN_PEER_PORT=str(peer),
               DIWAN_PEER_HOST="127.0.0.1")
    where = subprocess.run([str(bin_dir / "python"), "-c", "import app; print(app.__file__)"],
                           env=env, cwd=home, capture_output=True, text=True, check=True)
    assert Path(where.stdout.strip()).is_relative_to(tmp_path / "venv"), where.stdout
    diwan = bin_dir / "diwan"
    init = subprocess.run([str(diwan), "init"], env=env, cwd=home, capture_output=True,
                          text=True, timeout=60)
    assert init.returncode == 0, init.stderr
    assert (home / "diwan.toml").is_file() and (home / "admin.token").is_file()
    with open(tmp_path / "up.log", "wb") as log:
        up = subprocess.Popen([str(diwan), "up"], env=env, cwd=home, stdout=log,
                              stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while not (st := status(diwan, env, home))["running"]:
            assert up.poll() is None, (tmp_path / "up.log").read_text()
            assert time.monotonic() < deadline, (tmp_path / "up.log").read_text()
            time.sleep(0.3)
        assert all(st["processes"][p]["pid"] for p in PROCESSES), st
        assert st["admin_url"] == f"http://127.0.0.1:{admin}"
        stop = subprocess.run([str(diwan), "stop"], env=env, cwd=home, capture_output=True,
                              text=True, timeout=60)
        assert stop.returncode == 0, stop.stderr
        assert all(f"{p} (pid " in stop.stdout for p in PROCESSES), stop.stdout
        # honcho exits 143 when its SIGTERM came from diwan stop (tests/cli/test_cli_up.py)
        assert up.wait(timeout=30) in (0, 143), (tmp_path / "up.log").read_text()
        after = status(diwan, env, home)
        assert not after["running"]
        assert all(after["processes"][p]["pid"] is None for p in PROCESSES), after
    finally:
        if up.poll() is None:
            subprocess.run([str(diwan), "stop"], env=env, cwd=home, timeout=60)
            up.wait(timeout=30)
    log_text = (tmp_path / "up.log").read_text()
    assert "Starting admin, peer and scheduler" in log_text
