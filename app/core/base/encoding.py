"""Strict unpadded base64url, the one encoding of bytes in Diwan's formats."""

from __future__ import annotations

import base64
import binascii
import re

from .errors import BadInput

_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
# The bits the last character of an unpadded text of length 4k+2 (or 4k+3) carries
# beyond the data: canonical base64url has them zero (RFC 4648 section 3.5).
_SPARE_BITS = {2: 0x0F, 3: 0x03}
_ALPHABET_BYTES = _ALPHABET.encode("ascii")
_BYTE_VALUE = {c: i for i, c in enumerate(_ALPHABET_BYTES)}
_TO_STANDARD = bytes.maketrans(b"-_", b"+/")  # base64url to the alphabet binascii reads


def b64e(data: bytes) -> str:
    """Unpadded base64url (RFC 4648 section 5, no ``=``) of ``data``, as ASCII text."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64d(text: str | bytes, *, length: int | None = None, what: str = "value",
         field: str | None = None) -> bytes:
    """Decode canonical unpadded base64url (RFC 4648 section 5) to bytes.

    ``text`` is ASCII text or bytes; ``length`` (bytes), when given, is the exact decoded
    length required; ``what`` names the value in the message and ``field`` the input field in
    the error (for API responses). Raises :class:`BadInput` for padding, other alphabets,
    non-canonical trailing bits or a wrong length (``docs/protocol.md``, Glossary).
    """
    if isinstance(text, str):
        if not text.isascii():
            raise BadInput(f"{what} is not unpadded base64url", field=field)
        chars = text.encode("ascii")
    elif not text.isascii():
        raise BadInput(f"{what} is not base64url", field=field)
    else:
        chars = text
    # C passes over the bytes, not a regex: only the alphabet, never 4k+1 characters
    if chars.translate(None, _ALPHABET_BYTES) or len(chars) % 4 == 1:
        raise BadInput(f"{what} is not unpadded base64url", field=field)
    try:
        data = binascii.a2b_base64(chars.translate(_TO_STANDARD) + b"=" * (-len(chars) % 4))
    except (binascii.Error, ValueError):
        raise BadInput(f"{what} is not unpadded base64url", field=field) from None
    spare = _SPARE_BITS.get(len(chars) % 4)
    if spare is not None and _BYTE_VALUE[chars[-1]] & spare:  # as re-encoding and comparing
        raise BadInput(f"{what} is not canonical base64url", field=field)
    if length is not None and len(data) != length:
        raise BadInput(f"{what} must be {length} bytes, not {len(data)}", field=field)
    return data


_B64_ANY_RE = re.compile(r"[A-Za-z0-9+/]*={0,2}|[A-Za-z0-9_-]*={0,2}")


def b64d_any(text: str, *, what: str = "value", field: str | None = None) -> bytes:
    """Decode base64 as people and tools write it, for input from the owner only: the
    standard alphabet (``+/``, RFC 4648 section 4) or base64url (``-_``, section 5),
    padded or not (padding, if present, must be right). Diwan's formats themselves store
    only canonical unpadded base64url (:func:`b64e`). Raises :class:`BadInput`."""
    if not isinstance(text, str) or not _B64_ANY_RE.fullmatch(text):
        raise BadInput(f"{what} is not base64", field=field)
    body = text.rstrip("=")
    if len(body) % 4 == 1 or (len(text) != len(body) and len(text) % 4):
        raise BadInput(f"{what} is not base64 (wrong length or padding)", field=field)
    try:
        return base64.b64decode(body.replace("-", "+").replace("_", "/")
                                + "=" * (-len(body) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise BadInput(f"{what} is not base64", field=field) from None
