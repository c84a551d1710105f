"""Settings that only make sense together are checked together."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.core.base import config
from app.core.base.errors import BadInput


def test_a_feed_page_must_hold_the_largest_post(tmp_path: Path) -> None:
    edge = config.min_response_bytes(100_000)  # the post, its framing and message 2
    assert edge == 100_000 + 97 + 4096
    ok = config.load(tmp_path, {"max_post_bytes": 100_000, "max_response_bytes": edge}, {})
    assert ok["max_response_bytes"] == edge
    with pytest.raises(BadInput) as err:
        config.load(tmp_path, {"max_post_bytes": 100_000, "max_response_bytes": edge - 1}, {})
    assert err.value.field == "max_response_bytes"


def test_an_unknown_setting_in_the_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "diwan.toml").write_text('admin_prot = 9000\n')
    with pytest.raises(BadInput) as err:
        config.load(tmp_path, None, {})
    assert err.value.field == "admin_prot" and "typo" in err.value.message
