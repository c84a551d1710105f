"""docs/architecture.md's settings table lists every setting with its default and range,
in the order of the code's table (21 settings were missing from it, peer_keepalive_requests
and verify_processes among them, and the key file's Argon2id defaults and
max_response_bytes's minimum were stale)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from app.core.base.config import SETTINGS

DOC = Path(__file__).resolve().parent.parent / "docs" / "architecture.md"


def test_the_settings_table_lists_every_setting_with_its_default() -> None:
    text = DOC.read_text()
    table = text[text.index("| setting | default | allowed |"):]
    table = table[:table.index("\n\n")]
    rows = re.findall(r"^\| `([a-z0-9_]+)` \| (.+?) \| (.+) \|$", table, re.M)
    assert [name for name, _, _ in rows] == [s.name for s in SETTINGS]
    for (name, default, allowed), setting in zip(rows, SETTINGS, strict=True):
        assert json.loads(default) == setting.default, name
        if isinstance(setting.default, int) and not isinstance(setting.default, bool):
            assert allowed.split()[:3] == [str(setting.low), "–", str(setting.high)], name
