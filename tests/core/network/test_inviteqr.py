"""The invite's QR code (inviteqr.py): the page's SVG path draws exactly segno's modules."""

from __future__ import annotations

import re

import segno

from app.core.network import inviteqr

TEXT = "diwan-invite:" + "eyJ2IjoxfQ" * 40


def test_the_svg_path_is_the_qr_matrix() -> None:
    size, d = inviteqr.svg_path(TEXT)
    rows = list(segno.make(TEXT, error="l", micro=False, boost_error=False).matrix_iter(border=4))
    dark = {(x, y) for y, row in enumerate(rows) for x, on in enumerate(row) if on}
    drawn = {(int(x), int(y)) for x, y in re.findall(r"M(\d+) (\d+)h1v1h-1z", d)}
    assert size == len(rows) and drawn == dark
    assert re.fullmatch(r"[0-9Mhvz -]+", d)  # nothing a template would need to escape


def test_png_svg_and_terminal() -> None:
    assert inviteqr.png(TEXT)[:8] == b"\x89PNG\r\n\x1a\n"
    assert inviteqr.svg(TEXT).startswith("<svg")
    assert set(inviteqr.terminal(TEXT)) <= set("█▀▄ \n")
