"""Gunicorn's logger with every request-supplied value made safe for a log line.

Gunicorn decodes the path (``%(U)s`` is ``PATH_INFO``), so ``/x%0aFAKE`` split an access
log line in two and ``%1b`` wrote a raw terminal escape; a stranger on the peer port could
forge log lines or garble a terminal (``docs/threats.md``, T68). Here control characters
(C0, DEL, C1) and the Unicode line, paragraph and bidirectional controls in any text atom
are written as ``\\xNN`` / ``\\uNNNN`` escapes.
"""

from __future__ import annotations

import re
from typing import Any

from gunicorn.glogging import Logger

_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def escape(text: str) -> str:
    """``text`` with every control, line-separator and bidi character escaped
    (``"\\n"`` becomes the four characters ``\\x0a``)."""
    return _UNSAFE.sub(lambda m: (f"\\x{ord(m[0]):02x}" if ord(m[0]) < 0x100
                                  else f"\\u{ord(m[0]):04x}"), text)


class SafeLogger(Logger):
    """:class:`gunicorn.glogging.Logger` whose access-log atoms are :func:`escape`-d."""

    def atoms(self, resp: Any, req: Any, environ: Any, request_time: Any) -> dict[str, Any]:
        """Gunicorn's atoms, each text value escaped."""
        found = super().atoms(resp, req, environ, request_time)
        return {k: escape(v) if isinstance(v, str) else v for k, v in found.items()}
