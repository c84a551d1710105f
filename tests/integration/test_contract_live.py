"""A bounded schemathesis run against the real gunicorn admin and peer apps (issue 10, item 7).

The ``schemathesis`` command line, as a user would run it, with the token: 0
server errors and 0 responses that break the published document.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import NodeFactory

CHECKS = ("not_a_server_error,status_code_conformance,content_type_conformance,"
          "response_schema_conformance")


def _st() -> str:
    found = shutil.which("st", path=str(Path(sys.executable).parent))
    if found is None:
        pytest.fail("the schemathesis command line (st) is missing: install '.[test]'")
    return found


def _run(url: str, cwd: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_st(), "run", f"{url}/openapi.json", "--checks", CHECKS, "--max-examples", "5",
         "--seed", "10", "--generation-deterministic", "--request-timeout", "20",
         "--workers", "1", "--phases", "examples,fuzzing", *extra],
        capture_output=True, text=True, timeout=600, cwd=cwd)  # its cache goes to cwd


def test_schemathesis_finds_nothing_against_real_gunicorn(make_node: NodeFactory,
                                                          tmp_path: Path) -> None:
    node = make_node(settings={"key_server": True})
    admin = _run(node.admin_url, tmp_path, "-H", f"Authorization: Bearer {node.token}",
                 "-H", "Host: 127.0.0.1")
    assert admin.returncode == 0, admin.stdout[-20000:] + admin.stderr[-2000:]
    peer = _run(node.peer_url, tmp_path)
    assert peer.returncode == 0, peer.stdout[-20000:] + peer.stderr[-2000:]
