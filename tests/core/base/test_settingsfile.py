"""diwan.toml as a server started with it (app/core/base/settingsfile.py): once pinned,
an edit that does not check out does not stop a replacement worker from booting."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from app.core.base import config, settingsfile
from app.core.base.errors import BadInput


@pytest.fixture(autouse=True)
def _unpinned() -> Iterator[None]:
    settingsfile.unpin_all()
    yield
    settingsfile.unpin_all()


def test_a_pinned_file_is_read_as_it_was(tmp_path: Path) -> None:
    toml = tmp_path / config.CONFIG_FILE
    toml.write_text("feed_cache_kib = 7\n")
    settingsfile.pin(toml)
    toml.write_text("feed_cache_kib = -1\n")              # a bad edit while it runs
    assert config.load(tmp_path)["feed_cache_kib"] == 7
    toml.write_text("not toml [\n")
    assert config.load(tmp_path)["feed_cache_kib"] == 7
    settingsfile.unpin_all()                             # another process reads it afresh
    with pytest.raises(BadInput, match="diwan.toml"):
        config.load(tmp_path)


def test_without_a_pin_every_read_sees_the_file(tmp_path: Path) -> None:
    toml = tmp_path / config.CONFIG_FILE
    toml.write_text("feed_cache_kib = 7\n")
    assert config.load(tmp_path)["feed_cache_kib"] == 7
    toml.write_text("feed_cache_kib = 8\n")
    assert config.load(tmp_path)["feed_cache_kib"] == 8
    toml.write_text("feed_cache_kib = -1\n")
    with pytest.raises(BadInput, match="feed_cache_kib"):
        config.load(tmp_path)


def test_pinning_no_file_pins_the_defaults(tmp_path: Path) -> None:
    settingsfile.pin(tmp_path / config.CONFIG_FILE)
    (tmp_path / config.CONFIG_FILE).write_text("feed_cache_kib = -1\n")
    assert config.load(tmp_path)["feed_cache_kib"] == config.DEFAULTS["feed_cache_kib"]


@pytest.mark.parametrize(("make", "said"), [
    (lambda p: os.mkfifo(p), "not a regular file"),   # hung every command, stop too
    (lambda p: p.mkdir(), "not a regular file"),
    (lambda p: p.write_bytes(b"# \xff\n"), "not UTF-8"),
    (lambda p: p.write_bytes(b"#" * settingsfile.MAX_BYTES + b"\n"), "larger than 1024 KiB"),
])
def test_a_file_that_is_not_a_settings_file_is_one_error(
        tmp_path: Path, make: Callable[[Path], object], said: str) -> None:
    """Found by the stop 21 testers: a FIFO in diwan.toml's place hung status, doctor and
    stop for good; a file that is not UTF-8 was a traceback; a 500 MB one was read whole."""
    toml = tmp_path / config.CONFIG_FILE
    make(toml)
    with pytest.raises(BadInput, match=said):
        settingsfile.read(toml)


def test_a_file_at_the_size_limit_is_read(tmp_path: Path) -> None:
    toml = tmp_path / config.CONFIG_FILE
    toml.write_bytes(b"feed_cache_kib = 7\n" + b"#" * (settingsfile.MAX_BYTES - 20) + b"\n")
    assert toml.stat().st_size == settingsfile.MAX_BYTES
    assert settingsfile.read(toml) == {"feed_cache_kib": 7}
