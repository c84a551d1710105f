"""Strict patterns for every name that comes from outside and may touch a path."""

from __future__ import annotations

import re

from .errors import BadFingerprint, BadInput, BadName

FINGERPRINT_RE = re.compile(r"[0-9a-f]{64}")
SHA1_RE = re.compile(r"[0-9a-f]{40}")
GROUP_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")  # < 64 chars: never a fingerprint
BLOCKED = "blocked"


def fingerprint(value: object, *, field: str = "fingerprint") -> str:
    """Return ``value`` if it is a fingerprint: 64 lowercase hexadecimal characters.

    ``field`` names the input field in the error. Raises :class:`BadFingerprint` for anything
    else, non-strings included (``docs/protocol.md``, Key documents: Fingerprint).
    """
    if not isinstance(value, str) or not FINGERPRINT_RE.fullmatch(value):
        raise BadFingerprint(field=field)
    return value


def sha1(value: object, *, field: str = "sha") -> str:
    """Return ``value`` if it is a post file name: 40 lowercase hexadecimal characters.

    ``field`` names the input field in the error. Raises :class:`BadInput` for anything else
    (``docs/protocol.md``, Posts: The post file).
    """
    if not isinstance(value, str) or not SHA1_RE.fullmatch(value):
        raise BadInput("a post SHA-1 must be 40 lowercase hexadecimal characters", field=field)
    return value


def group(value: object, *, field: str = "name") -> str:
    """Return ``value`` if it is a group name: a sub-directory of ``identities/``.

    1-63 characters of ``a-z 0-9 _ -`` starting with a letter or digit: no separators, no
    dots, never as long as a fingerprint. ``field`` names the input field in the error.
    Raises :class:`BadName` for anything else.
    """
    if not isinstance(value, str) or not GROUP_RE.fullmatch(value):
        raise BadName(field=field)
    return value
