"""The one JSON parser and printer of Diwan: bounded in depth, strict about numbers.

Every JSON document that enters the node (post payloads, feed envelopes and
pages, key-server uploads, admin and peer request bodies, multipart fields
holding JSON) is read by :func:`loads`, and every JSON the node prints is made
by :func:`dumps`. The rules (``docs/protocol.md``, "JSON"):

- UTF-8, no duplicate object keys, no ``NaN``/``Infinity`` tokens;
- every number is finite (``1e400`` overflows to infinity: refused), and every
  integer lies within ±(2^53 − 1), the integers every JSON reader (a browser's
  ``JSON.parse`` too) holds exactly;
- arrays and objects nest at most ``max_depth`` deep, checked by a scan before
  parsing, so a deeply nested body is a 400, never a recursion error.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from .errors import BadJson

MAX_SAFE_INTEGER = 2**53 - 1
DEFAULT_MAX_DEPTH = 32
_STRINGS = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_BRACKETS = re.compile(rb"[\[\]{}]")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        keys = [k for k, _ in pairs]
        dup = next(k for k in keys if keys.count(k) > 1)
        raise ValueError(f"duplicate key {dup[:80]!r}")
    return obj


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _int(text: str) -> int:
    if len(text.lstrip("-")) > 16:  # 2^53 has 16 digits: longer is out of range
        raise ValueError(f"the integer {text[:20]}... is beyond ±(2^53 - 1)")
    value = int(text)
    check_number(value)
    return value


def _float(text: str) -> float:
    value = float(text)
    check_number(value)
    return value


def check_number(value: int | float) -> None:
    """Raise ``ValueError`` unless ``value`` is finite and, if an integer, within ±(2^53 − 1)."""
    if isinstance(value, bool):
        return
    if isinstance(value, int):
        if not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            raise ValueError(f"the integer {value} is beyond ±(2^53 - 1)")
    elif not math.isfinite(value):
        raise ValueError("a number must be finite")


def depth(data: bytes) -> int:
    """The deepest nesting of arrays and objects in JSON text ``data`` (strings skipped)."""
    deepest = level = 0
    for match in _BRACKETS.finditer(_STRINGS.sub(b'""', data)):
        if match.group() in (b"[", b"{"):
            level += 1
            deepest = max(deepest, level)
        else:
            level -= 1
    return deepest


def loads(data: bytes | str, *, max_depth: int = DEFAULT_MAX_DEPTH, what: str = "JSON",
          field: str | None = None) -> Any:
    """Parse JSON text ``data`` by the rules above; :class:`BadJson` (a 400) if it breaks one.

    ``what`` names the document and ``field`` the input field in the error.
    """
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else bytes(data)
    # at most max_depth opening brackets in all (strings too): it cannot nest deeper
    if raw.count(b"[") + raw.count(b"{") > max_depth and depth(raw) > max_depth:
        raise BadJson(f"{what} nests deeper than {max_depth} levels", field=field)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadJson(f"{what} must be UTF-8", field=field) from None
    try:
        if text.startswith("\ufeff"):  # what json.loads refuses before decoding
            raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)",
                                       text, 0)
        return _DECODER.decode(text)
    except (ValueError, RecursionError) as exc:
        raise BadJson(f"{what} is not valid JSON: {str(exc)[:200]}", field=field) from None


# One decoder for every call (a JSONDecoder holds no state between calls): json.loads
# with hooks builds a new one each time, which cost as much as parsing a post's P1.
_DECODER = json.JSONDecoder(object_pairs_hook=_no_duplicates, parse_constant=_no_constant,
                            parse_int=_int, parse_float=_float)


def dumps(obj: Any, **kwargs: Any) -> str:
    """Strict JSON text of ``obj``: ``ValueError`` for NaN or infinity, which are never emitted.

    Keyword arguments are :func:`json.dumps`'s (``indent``, ``sort_keys``, ...).
    """
    return json.dumps(obj, allow_nan=False, **kwargs)
