"""An invite string as a QR code, for the terminal, PNG or SVG (with segno).

The QR code holds the invite string exactly (byte mode, error correction L so
that an invite with a full ``.pub`` fits); a phone camera or any QR reader gives
back the line to paste into ``diwan contact add``.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import segno


def _qr(text: str) -> segno.QRCode:
    import segno  # here, not at import: ~0.6 MiB every admin worker would hold unused

    return segno.make(text, error="l", micro=False, boost_error=False)


def terminal(text: str) -> str:
    """The QR code drawn with Unicode half blocks (two rows a line), as lines of text."""
    out = io.StringIO()
    _qr(text).terminal(out=out, compact=True, border=2)
    return out.getvalue()


def png(text: str, *, scale: int = 4) -> bytes:
    """The QR code as a PNG image (``scale`` pixels a module, 4-module quiet zone)."""
    out = io.BytesIO()
    _qr(text).save(out, kind="png", scale=scale)
    return out.getvalue()


def svg(text: str, *, scale: int = 4) -> str:
    """The QR code as a standalone SVG document (no XML declaration: it can be inlined)."""
    out = io.BytesIO()
    _qr(text).save(out, kind="svg", scale=scale, xmldecl=False, svgns=True,
                   title="Diwan invite")
    return out.getvalue().decode("utf-8")


def svg_path(text: str, *, border: int = 4) -> tuple[int, str]:
    """``(size, d)``: the QR code as one SVG path over a ``size`` x ``size`` view box, one
    ``M x y h1v1h-1z`` square per dark module; only digits and ``Mhvz``, so a template
    can draw it with autoescaping on."""
    rows = list(_qr(text).matrix_iter(border=border))
    d = "".join(f"M{x} {y}h1v1h-1z" for y, row in enumerate(rows)
                for x, dark in enumerate(row) if dark)
    return len(rows), d
