"""Every setting of the table is checked by type and range where it comes in.

The tests walk ``config.SETTINGS``: a setting added later is covered by
adding it to the table with its range, without new test code here (only a
setting that must agree with another needs a line in :func:`_fit`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from app.core.base import config
from app.core.base.errors import BadInput

INTS = [s for s in config.SETTINGS if isinstance(s.default, int)
        and not isinstance(s.default, bool)]
BOOLS = [s for s in config.SETTINGS if isinstance(s.default, bool)]
STRS = [s for s in config.SETTINGS if isinstance(s.default, str)]


def _largest_post(response_bytes: int) -> int:
    """The largest max_post_bytes (at least 100) whose page fits ``response_bytes``."""
    post = min(config.DEFAULTS["max_post_bytes"], response_bytes)
    while post > 100 and config.min_response_bytes(post) > response_bytes:
        post = max(100, post - max(1, (config.min_response_bytes(post) - response_bytes)))
    return post


def _fit(name: str, value: Any) -> dict[str, Any]:
    """Overrides that let ``name = value`` pass the checks made across settings."""
    d = config.DEFAULTS
    return {
        "max_post_bytes": {"max_response_bytes": max(d["max_response_bytes"],
                                                     config.min_response_bytes(value))},
        "max_response_bytes": {"max_post_bytes": _largest_post(value)},
        "admin_port": {"peer_port": 2 if value == 1 else 1},
        "peer_port": {"admin_port": 2 if value == 1 else 1},
    }.get(name, {})


def _refused(tmp_path: Path, s: config.Setting, env: str | None = None,
             toml: str | None = None) -> str:
    environ = {} if env is None else {"DIWAN_" + s.name.upper(): env}
    path = tmp_path / config.CONFIG_FILE
    if toml is not None:
        path.write_text(f"{s.name} = {toml}\n")
    with pytest.raises(BadInput) as info:
        config.load(tmp_path, None, environ)
    path.unlink(missing_ok=True)
    message = info.value.message
    assert info.value.field == s.name and "\n" not in message
    assert s.name in message and s.allowed() in message
    where = "DIWAN_" + s.name.upper() if env is not None else str(tmp_path / config.CONFIG_FILE)
    assert message.startswith(where + ": ")
    return message


def test_every_integer_setting_has_a_range_containing_its_default() -> None:
    for s in INTS:
        assert s.low is not None and s.high is not None, s.name
        assert s.low <= s.default <= s.high, s.name


@pytest.mark.parametrize("s", INTS, ids=lambda s: s.name)
def test_integer_edges_are_accepted(tmp_path: Path, s: config.Setting) -> None:
    assert s.low is not None and s.high is not None
    for edge in (s.low, s.high):
        env = {"DIWAN_" + s.name.upper(): str(edge)}
        assert config.load(tmp_path, _fit(s.name, edge), env)[s.name] == edge
        (tmp_path / config.CONFIG_FILE).write_text(f"{s.name} = {edge}\n")
        assert config.load(tmp_path, _fit(s.name, edge), {})[s.name] == edge
        (tmp_path / config.CONFIG_FILE).unlink()


@pytest.mark.parametrize("s", INTS, ids=lambda s: s.name)
def test_integers_outside_the_range_or_of_another_type_are_refused(
        tmp_path: Path, s: config.Setting) -> None:
    assert s.low is not None and s.high is not None
    for bad in (s.low - 1, s.high + 1, 10**20, -(10**20)):
        message = _refused(tmp_path, s, env=str(bad))
        assert repr(str(bad)) in message
        _refused(tmp_path, s, toml=str(bad))
    for text in ("", "abc", "1.5", "1e3", "0x10", "true"):
        _refused(tmp_path, s, env=text)
    for toml in ("1.5", "true", '"10"', "[1]"):
        _refused(tmp_path, s, toml=toml)


@pytest.mark.parametrize("s", BOOLS, ids=lambda s: s.name)
def test_booleans_are_booleans(tmp_path: Path, s: config.Setting) -> None:
    for text, value in (("true", True), ("off", False)):
        assert config.load(tmp_path, None, {"DIWAN_" + s.name.upper(): text})[s.name] is value
    for text in ("maybe", "2", ""):
        _refused(tmp_path, s, env=text)
    for toml in ("1", '"yes"', "0.0"):
        _refused(tmp_path, s, toml=toml)


@pytest.mark.parametrize("s", STRS, ids=lambda s: s.name)
def test_strings_are_checked(tmp_path: Path, s: config.Setting) -> None:
    if s.kind == "url":
        good = ["", "http://node.example:8889", "https://203.0.113.5", "http://[::1]:8889/"]
        bad = ["ftp://node.example", "http://", "node.example:8889", "http://x.example/feeds",
               "http://user@x.example", "http://x.example:0", "http://x.example:99999"]
    elif s.kind == "hosts":
        good = ["", "mybox", "mybox, tunnel.example", "127.0.0.2,::1"]
        bad = ["a b", "mybox, http://x", "x" * 64, "mybox:80"]
    elif s.choices:
        good, bad = list(s.choices), ["nonsense", s.choices[-1].upper() + "x"]
    else:
        good = ["127.0.0.1", "::1", "0.0.0.0", "localhost", "node.example."]
        bad = ["", "a b", "http://x", "-x.example", "x" * 64, "1.2.3.4:80"]
    for value in good:
        env = {"DIWAN_" + s.name.upper(): value, "DIWAN_ADMIN_EXPOSE": "true"}
        assert config.load(tmp_path, None, env)[s.name] == value
    for value in bad:
        _refused(tmp_path, s, env=value)
    _refused(tmp_path, s, toml="1")


def test_ports_must_differ(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="peer_port must differ from admin_port"):
        config.load(tmp_path, None, {"DIWAN_PEER_PORT": "8888"})


def test_the_reported_values(tmp_path: Path) -> None:
    """The issue's repros: 0 s interval and timeout, an interval that overflows the scheduler."""
    for name, value in (("sync_interval", "0"), ("sync_timeout", "0"),
                        ("sync_interval", "99999999999999999999"), ("workers", "1.5")):
        with pytest.raises(BadInput) as info:
            config.load(tmp_path, None, {"DIWAN_" + name.upper(): value})
        assert info.value.field == name
    (tmp_path / config.CONFIG_FILE).write_text("threads = 1.5\n")
    with pytest.raises(BadInput) as info:
        config.load(tmp_path, None, {})
    assert info.value.field == "threads"
