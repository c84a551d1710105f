"""Secrets open to other users: files refused (naming the chmod), directories repaired, like ssh."""

from __future__ import annotations

import logging
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from app.core.base.datadir import DataDir, open_datadir
from app.core.base.errors import InsecureFile
from tests.helpers.datadirs import make_datadir

FP = "ab" * 32  # a private key file's name (its content does not matter to the check)


def _node(tmp_path: Path) -> DataDir:
    dd = make_datadir(tmp_path / "node")
    key = dd.identities / FP
    key.write_bytes(b"secret")
    key.chmod(0o600)
    return dd


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("secret", ["admin.token", f"identities/{FP}"])
@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_an_open_secret_file_is_refused_naming_the_fix(tmp_path: Path, secret: str,
                                                       mode: int) -> None:
    dd = _node(tmp_path)
    (dd.root / secret).chmod(mode)
    with pytest.raises(InsecureFile) as info:
        open_datadir(dd.root)
    assert f"chmod 600 {dd.root / secret}" in info.value.message
    assert _mode(dd.root / secret) == mode  # not changed behind the owner's back


def test_the_token_is_checked_before_it_is_read(tmp_path: Path) -> None:
    dd = DataDir(_node(tmp_path).root, environ={})
    dd.token_path.chmod(0o644)
    with pytest.raises(InsecureFile, match="admin.token"):
        _ = dd.admin_token


def test_open_directories_are_repaired_with_a_warning(tmp_path: Path,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    dd = _node(tmp_path)
    dd.root.chmod(0o755)
    dd.identities.chmod(0o755)
    with caplog.at_level(logging.WARNING, "diwan.permissions"):
        open_datadir(dd.root)
    assert _mode(dd.root) == 0o700 and _mode(dd.identities) == 0o700
    assert "was open to other users (mode 755)" in caplog.text


def test_warn_downgrades_to_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    dd = _node(tmp_path)
    (dd.identities / FP).chmod(0o644)
    with caplog.at_level(logging.WARNING, "diwan.permissions"):
        open_datadir(dd.root, {"secret_permissions": "warn"})
    assert f"chmod 600 {dd.identities / FP}" in caplog.text
    assert _mode(dd.identities / FP) == 0o644


def test_a_secret_that_is_a_link_or_owned_by_another_user_is_refused(tmp_path: Path) -> None:
    dd = _node(tmp_path)
    (tmp_path / "elsewhere").write_text("x" * 64)
    dd.token_path.unlink()
    dd.token_path.symlink_to(tmp_path / "elsewhere")
    with pytest.raises(InsecureFile, match="symbolic link"):
        open_datadir(dd.root)
    if os.geteuid() == 0:
        dd.token_path.unlink()
        dd.token_path.write_text("x" * 64)
        dd.token_path.chmod(0o600)
        os.chown(dd.identities / FP, 12345, -1)
        with pytest.raises(InsecureFile, match="belongs to user 12345"):
            open_datadir(dd.root)


def test_the_processes_refuse_to_start_and_doctor_repairs(tmp_path: Path) -> None:
    dd = _node(tmp_path)
    (dd.identities / FP).chmod(0o644)
    dd.token_path.chmod(0o644)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIWAN_")}
    env.update(DIWAN_DATA_DIR=str(dd.root), DIWAN_ROLE="admin")
    bin_dir = Path(sys.executable).parent
    repo = Path(__file__).resolve().parents[3]
    for args in ([sys.executable, "-m", "scheduler"],
                 [str(bin_dir / "gunicorn"), "--config", str(repo / "gunicorn.conf.py"),
                  "app:create_admin_app()"],
                 [str(bin_dir / "diwan"), "identity", "list"],
                 [str(bin_dir / "diwan"), "doctor"]):
        result = subprocess.run(args, env=env, cwd=repo, capture_output=True, text=True,
                                timeout=60, check=False)
        assert result.returncode != 0, (args, result.stdout)
        assert "chmod 600" in result.stderr + result.stdout, result.stderr
        assert "Traceback" not in result.stderr, result.stderr
    fixed = subprocess.run([str(bin_dir / "diwan"), "doctor", "--repair"], env=env, cwd=repo,
                           capture_output=True, text=True, timeout=60, check=False)
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert _mode(dd.identities / FP) == 0o600 and _mode(dd.token_path) == 0o600
