"""Gunicorn's logger with every request-supplied value made safe for a log line.

Gunicorn decodes the path (``%(U)s`` is ``PATH_INFO``), so ``/x%0aFAKE`` split an access
log line in two and ``%1b`` wrote a raw terminal escape; a stranger on the peer port could
forge log lines or garble a terminal (``docs/threats.md``, T68). Here control characters
(C0, DEL, C1) and the Unicode line, paragraph and bidirectional controls in any text atom
are written as ``\\xNN`` / ``\\uNNNN`` escapes.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any

from gunicorn.glogging import Logger

_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def escape(text: str) -> str:
    """``text`` with every control, line-separator and bidi character escaped
    (``"\\n"`` becomes the four characters ``\\x0a``)."""
    return _UNSAFE.sub(lambda m: (f"\\x{ord(m[0]):02x}" if ord(m[0]) < 0x100
                                  else f"\\u{ord(m[0]):04x}"), text)


def _status(resp: Any) -> Any:
    status = resp.status
    return status.split(None, 1)[0] if isinstance(status, str) else status


# Atoms made from the request alone, as gunicorn 23's Logger.atoms makes them: a format
# using only these is served without gunicorn's full table (every header and environ
# entry, the time formatted, a getpid), which cost about as much as a small request.
_CHEAP: dict[str, Callable[[Any, Any, Any], Any]] = {
    "h": lambda resp, environ, t: environ.get("REMOTE_ADDR", "-"),
    "l": lambda resp, environ, t: "-",
    "m": lambda resp, environ, t: environ.get("REQUEST_METHOD"),
    "U": lambda resp, environ, t: environ.get("PATH_INFO"),
    "q": lambda resp, environ, t: environ.get("QUERY_STRING"),
    "H": lambda resp, environ, t: environ.get("SERVER_PROTOCOL"),
    "s": lambda resp, environ, t: _status(resp),
    "b": lambda resp, environ, t: getattr(resp, "sent", None) is not None and str(resp.sent)
    or "-",
    "B": lambda resp, environ, t: getattr(resp, "sent", None),
    "T": lambda resp, environ, t: t.seconds,
    "D": lambda resp, environ, t: t.seconds * 1000000 + t.microseconds,
    "M": lambda resp, environ, t: t.seconds * 1000 + int(t.microseconds / 1000),
    "L": lambda resp, environ, t: f"{t.seconds}.{t.microseconds:06d}",
}


@functools.lru_cache(maxsize=8)
def format_atoms(log_format: str) -> frozenset[str]:
    """The atom names ``%(name)s`` of an access-log format."""
    return frozenset(re.findall(r"%\(([^)]*)\)", log_format))


class SafeLogger(Logger):
    """:class:`gunicorn.glogging.Logger` whose access-log atoms are :func:`escape`-d."""

    def atoms(self, resp: Any, req: Any, environ: Any, request_time: Any) -> dict[str, Any]:
        """Gunicorn's atoms, each text value escaped: only those the access-log format
        uses when they are all in :data:`_CHEAP` (the node's format), else all of them."""
        wanted = format_atoms(self.cfg.access_log_format)
        if wanted <= _CHEAP.keys():
            found = {k: _CHEAP[k](resp, environ, request_time) for k in wanted}
        else:
            found = super().atoms(resp, req, environ, request_time)
        return {k: escape(v) if isinstance(v, str) else v for k, v in found.items()}
