"""What a process loads by importing Diwan: the core, the CLI and the scheduler load no web
framework, and the apps leave rarely used libraries until they are used.

Every module of the package is imported through ``app/__init__.py``; when it imported
Flask to define the app factories, each of those processes (the scheduler, every CLI
command, each signature-check helper, the gunicorn masters) held Flask, flask-smorest,
Jinja and their dependencies, ~25 MiB of resident memory (bench/README.md, "Memory").
Each check runs in a fresh interpreter, since this one has imported everything.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
WEB = ("flask", "werkzeug", "flask_smorest", "jinja2", "flask_wtf", "wtforms")


def _loaded(code: str, tmp_path: Path, role: str = "admin") -> set[str]:
    """Top-level packages in ``sys.modules`` after running ``code`` in a fresh interpreter."""
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("DIWAN_")},
           "DIWAN_DATA_DIR": str(tmp_path / "data"), "DIWAN_ROLE": role}
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys, json\n"
         "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=True)
    return set(json.loads(out.stdout.splitlines()[-1]))


@pytest.mark.parametrize("modules", [
    "app.core.network.sync, app.core.network.feeds, app.core.posts.ingest",
    "app.cli",
    "scheduler.worker",
    "app.core.base.verifyhelper",
    "app.run.gunicorn_conf",
])
def test_processes_without_pages_load_no_web_framework(modules: str, tmp_path: Path) -> None:
    loaded = _loaded(f"import {modules}", tmp_path)
    assert "app" in loaded
    assert not loaded & set(WEB), sorted(loaded & set(WEB))


@pytest.mark.parametrize("factory, role", [("create_admin_app", "admin"),
                                           ("create_peer_app", "peer")])
def test_the_apps_leave_rarely_used_libraries_until_used(factory: str, role: str,
                                                         tmp_path: Path) -> None:
    """QR codes (segno) are drawn only for an invite; psutil is asked only by the CLI's
    process checks and the address listing."""
    loaded = _loaded(f"import app\napp.{factory}()", tmp_path, role)
    assert "flask" in loaded
    assert not loaded & {"segno", "psutil"}, sorted(loaded & {"segno", "psutil"})
