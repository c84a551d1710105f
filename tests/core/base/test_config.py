"""app/core/config.py and app/core/datadir.py: precedence, bad values, the data directory."""

from __future__ import annotations

import logging
import os
import stat
import tomllib
from pathlib import Path

import pytest

from app.core.base import config
from app.core.base.datadir import DataDir, open_datadir
from app.core.base.errors import BadInput

MiB = 1024 * 1024


def _toml(root: Path, text: str) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / config.CONFIG_FILE).write_text(text)


def test_defaults_without_file_or_environment(tmp_path: Path) -> None:
    cfg = config.load(tmp_path, environ={})
    assert cfg == config.DEFAULTS
    assert (cfg["admin_host"], cfg["admin_port"]) == ("127.0.0.1", 8888)
    assert (cfg["peer_host"], cfg["peer_port"]) == ("::", 8889)
    assert cfg["kdf_memlimit"] >= 64 * MiB


def test_precedence_defaults_file_environment_overrides(tmp_path: Path) -> None:
    _toml(tmp_path, "admin_port = 9001\npeer_port = 9002\nworkers = 3\n")
    env = {"DIWAN_PEER_PORT": "9102", "DIWAN_WORKERS": "5"}
    assert config.load(tmp_path, environ={})["admin_port"] == 9001
    cfg = config.load(tmp_path, environ=env)
    assert (cfg["admin_port"], cfg["peer_port"], cfg["workers"]) == (9001, 9102, 5)
    cfg = config.load(tmp_path, {"workers": 7}, environ=env)
    assert (cfg["admin_port"], cfg["peer_port"], cfg["workers"]) == (9001, 9102, 7)
    assert cfg["threads"] == config.DEFAULTS["threads"]


def test_process_environment_is_used_by_default(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIWAN_ADMIN_PORT", "9555")
    assert config.load(tmp_path)["admin_port"] == 9555


@pytest.mark.parametrize(("text", "value"), [("true", True), ("0", False), ("Yes", True),
                                             ("off", False)])
def test_booleans_from_environment(tmp_path: Path, text: str, value: bool) -> None:
    assert config.load(tmp_path, environ={"DIWAN_KEY_SERVER": text})["key_server"] is value


@pytest.mark.parametrize(("source", "name", "value"), [
    ("env", "admin_port", "abc"),
    ("env", "workers", ""),
    ("env", "key_server", "maybe"),
    ("toml", "admin_port", '"not a port"'),
    ("toml", "workers", "true"),
    ("toml", "key_server", '"perhaps"'),
    ("override", "threads", "many"),
    ("env", "admin_port", "70000"),
    ("env", "peer_port", "0"),
    ("toml", "workers", "0"),
    ("env", "admin_max_body", "-1"),
    ("env", "kdf_memlimit", str(256 * MiB - 1)),
    ("env", "kdf_memlimit", str(64 * MiB)),
    ("toml", "kdf_memlimit", "1048576"),
    ("override", "kdf_memlimit", 32 * MiB),
    ("env", "kdf_opslimit", "2"),
])
def test_bad_values_are_bad_input_naming_the_setting(tmp_path: Path, source: str, name: str,
                                                     value: object) -> None:
    env: dict[str, str] = {}
    overrides: dict[str, object] = {}
    if source == "env":
        env["DIWAN_" + name.upper()] = str(value)
    elif source == "toml":
        _toml(tmp_path, f"{name} = {value}\n")
    else:
        overrides[name] = value
    with pytest.raises(BadInput) as info:
        config.load(tmp_path, overrides, environ=env)
    assert info.value.field == name
    assert isinstance(info.value, ValueError)


def test_kdf_memlimit_edge_is_accepted(tmp_path: Path) -> None:
    cfg = config.load(tmp_path, environ={"DIWAN_KDF_MEMLIMIT": str(256 * MiB),
                                         "DIWAN_KDF_OPSLIMIT": "3"})
    assert (cfg["kdf_memlimit"], cfg["kdf_opslimit"]) == (256 * MiB, 3)


def test_broken_toml_is_bad_input(tmp_path: Path) -> None:
    _toml(tmp_path, "admin_port = = 1\n")
    with pytest.raises(BadInput, match="diwan.toml"):
        config.load(tmp_path, environ={})


def test_rendered_toml_lists_every_setting_with_its_default() -> None:
    text = config.render_toml()
    assert tomllib.loads(text) == config.DEFAULTS
    for setting in config.SETTINGS:
        assert f"# {setting.help}\n{setting.name} = " in text


def test_data_dir_choice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert config.data_dir_from_env() == tmp_path.resolve()
    monkeypatch.setenv("DIWAN_DATA_DIR", str(tmp_path / "env"))
    assert config.data_dir_from_env() == (tmp_path / "env").resolve()
    assert config.data_dir_from_env(tmp_path / "explicit") == (tmp_path / "explicit").resolve()


def test_initialise_creates_layout_config_and_private_token(tmp_path: Path) -> None:
    dd = DataDir(tmp_path / "node", environ={})
    assert dd.initialise() is True
    for sub in ("identities", "identities/blocked", "posts", "state", "state/locks"):
        path = dd.root / sub
        assert path.is_dir() and stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, sub
    assert tomllib.loads((dd.root / "diwan.toml").read_text()) == config.DEFAULTS
    token = dd.token_path.read_text()
    assert stat.S_IMODE(dd.token_path.stat().st_mode) == 0o600
    assert len(token.strip()) == 64 and int(token, 16) >= 0
    assert dd.initialise() is False
    assert dd.token_path.read_text() == token
    assert dd.check_token(token.strip())
    assert not dd.check_token(token.strip()[:-1] + "x")
    assert not dd.check_token("")
    assert not dd.check_token("é" * 64)


def test_initialise_keeps_an_existing_config(tmp_path: Path) -> None:
    _toml(tmp_path, "admin_port = 9999\n")
    dd = open_datadir(tmp_path)
    assert dd.settings["admin_port"] == 9999
    assert (tmp_path / "diwan.toml").read_text() == "admin_port = 9999\n"
    assert dd.token_path.exists()
    expected = {"admin.token", "diwan.toml", "identities", "posts", "state"}
    assert expected <= set(os.listdir(tmp_path))


def test_the_source_checkout_is_never_a_data_directory(tmp_path: Path) -> None:
    """Issue 11: running the Procfile (or any process) in the checkout refuses instead
    of writing a token, keys and posts into it."""
    from app.core.base.datadir import DataDir, open_datadir
    from app.core.base.errors import BadInput

    checkout = tmp_path / "diwan"
    (checkout / "app").mkdir(parents=True)
    (checkout / "scheduler").mkdir()
    (checkout / "app" / "__init__.py").write_text("")
    (checkout / "pyproject.toml").write_text("[project]\nname = 'diwan'\n")
    before = sorted(checkout.rglob("*"))
    with pytest.raises(BadInput, match="source checkout"):
        open_datadir(checkout)
    with pytest.raises(BadInput, match="source checkout"):
        DataDir(checkout).initialise()
    assert sorted(checkout.rglob("*")) == before


@pytest.mark.parametrize(("inside", "refused"), [
    ("app", True), ("tests/x", True), ("docs", True), ("var", True), ("bench/out", True),
    ("var/demo", False), ("var/a/b", False), ("bench/out/ingest-1", False)])
def test_no_folder_of_the_checkout_is_a_data_directory_but_its_output_ones(
        tmp_path: Path, inside: str, refused: bool) -> None:
    """Found by the stop 21 tester: DIWAN_DATA_DIR=app (or --data-dir docs) made the
    source folder 0700 and wrote a token and state into it; var/ (make run's demo node)
    and bench/out/ (the benchmarks' nodes) are ignored by git and stay usable."""
    from app.core.base.datadir import refuse_source_checkout

    checkout = tmp_path / "diwan"
    (checkout / "app").mkdir(parents=True)
    (checkout / "scheduler").mkdir()
    (checkout / "app" / "__init__.py").write_text("")
    (checkout / "pyproject.toml").write_text("[project]\nname = 'diwan'\n")
    target = checkout / inside
    if refused:
        with pytest.raises(BadInput, match="inside the Diwan source checkout"):
            refuse_source_checkout(target)
        with pytest.raises(BadInput, match="source checkout"):
            open_datadir(target)
        assert not (target / "admin.token").exists()
    else:
        refuse_source_checkout(target)
        assert open_datadir(target).token_path.exists()


def test_gunicorn_refuses_a_source_checkout_before_changing_its_mode(tmp_path: Path) -> None:
    """Started in the checkout without DIWAN_DATA_DIR, the gunicorn settings refused only
    after their secret check had made the checkout 0700."""
    import subprocess
    import sys

    checkout = tmp_path / "diwan"
    (checkout / "app").mkdir(parents=True)
    (checkout / "scheduler").mkdir()
    (checkout / "app" / "__init__.py").write_text("")
    (checkout / "pyproject.toml").write_text("[project]\nname = 'diwan'\n")
    checkout.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIWAN_")}
    root = Path(__file__).resolve().parents[3]
    env["PYTHONPATH"] = str(root)
    done = subprocess.run([sys.executable, "-c", "import app.run.gunicorn_conf"], cwd=checkout,
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "source checkout" in done.stderr
    assert checkout.stat().st_mode & 0o777 == 0o755


def test_the_insecure_kdf_switch_is_no_setting_and_is_announced(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """DIWAN_INSECURE_KDF is read from the environment only, never written by init,
    refused in diwan.toml, and a process that honours it logs a WARNING once."""
    assert "insecure" not in config.render_toml().lower()
    assert not any("insecure" in s.name for s in config.SETTINGS)
    _toml(tmp_path, "insecure_kdf = true\n")
    with pytest.raises(BadInput, match="unknown setting"):
        config.load(tmp_path, environ={})
    monkeypatch.setattr(config, "_warned", False)
    with caplog.at_level(logging.WARNING, logger="diwan"):
        assert config.warn_if_insecure_kdf() is True        # conftest sets it for the suite
        assert config.warn_if_insecure_kdf() is True
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "DIWAN_INSECURE_KDF" in warnings[0].getMessage()
    monkeypatch.setattr(config, "_warned", False)
    monkeypatch.delenv("DIWAN_INSECURE_KDF")
    caplog.clear()
    assert config.warn_if_insecure_kdf() is False
    assert caplog.records == []


@pytest.mark.parametrize("command", [["-c", "import app.run.gunicorn_conf"],
                                     ["-m", "scheduler"]])
def test_servers_started_in_a_stray_folder_refuse_to_make_it_a_node(
        tmp_path: Path, command: list[str]) -> None:
    """Found by the stop 21 tester: a gunicorn app started by hand in (say) a home
    directory without DIWAN_DATA_DIR made it a data directory, mode 0700, with a token."""
    import subprocess
    import sys

    folder = tmp_path / "home"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine\n")
    folder.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIWAN_")}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[3])
    done = subprocess.run([sys.executable, *command], cwd=folder, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "DIWAN_DATA_DIR is not set" in done.stderr and "Traceback" not in done.stderr
    assert folder.stat().st_mode & 0o777 == 0o755
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt"]


def test_a_server_started_in_a_data_directory_uses_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from app.core.base.datadir import server_root

    assert server_root({"DIWAN_DATA_DIR": str(tmp_path / "x")}) == tmp_path / "x"
    open_datadir(tmp_path / "node")
    monkeypatch.chdir(tmp_path / "node")
    assert server_root({}) == tmp_path / "node"
