"""Petnames and the names people type: local, private names for keys, and resolving them.

A petname is a name the owner gives a key on this node only (as in the
petname systems of Scuttlebutt clients); it is stored in
``state/petnames.json`` (``{fingerprint: name}``, 0600) and never sent
anywhere. :func:`resolve` turns what a person types into a fingerprint: the
full fingerprint, a petname, or a unique hex prefix of at least
:data:`MIN_PREFIX` characters of a key this node holds (docs/protocol.md
"Names"). Only the owner's front ends (CLI, admin API) resolve names; the peer
port never does, since answering prefixes would make it a probe.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from ..base import names
from ..base.datadir import DataDir
from ..base.errors import BadInput, Conflict, NotFound
from ..base.statefile import StateFile

MIN_PREFIX = 8
SHORT = 16  # characters of a fingerprint shown where no name is known
PETNAME_RE = re.compile(r"[^\W\d_][\w.-]{0,31}")
_HEX_RE = re.compile(r"[0-9a-f]+")


def short(fp: str) -> str:
    """The short form of a fingerprint that output shows (a prefix :func:`resolve` accepts)."""
    return fp[:SHORT]


def check_petname(name: str) -> str:
    """``name`` if it is a valid petname: 1-32 characters, a letter first, then letters,
    digits, ``.``, ``_`` or ``-``, and not 8 or more hex digits (which would read as a
    prefix). Raises :class:`BadInput` (field ``name``) otherwise."""
    if not isinstance(name, str) or not PETNAME_RE.fullmatch(name):
        raise BadInput("a petname is 1-32 letters, digits, '.', '_' or '-', starting with "
                       "a letter", field="name")
    if len(name) >= MIN_PREFIX and _HEX_RE.fullmatch(name.lower()):
        raise BadInput("a petname of 8 or more hex digits would read as a fingerprint prefix",
                       field="name")
    return name


class Petnames:
    """The petnames of one data directory (``state/petnames.json``)."""

    def __init__(self, dd: DataDir) -> None:
        self.dd = dd
        self.file = StateFile(dd, "petnames")

    def all(self) -> dict[str, str]:
        """``{fingerprint: petname}`` for every named key (entries that are not valid skipped)."""
        return {fp: name for fp, name in self.file.read().items()
                if names.FINGERPRINT_RE.fullmatch(fp) and isinstance(name, str)}

    def get(self, fp: str) -> str | None:
        """The petname of ``fp``, or None."""
        return self.all().get(fp)

    def fingerprint_of(self, name: str) -> str | None:
        """The key named ``name`` (compared case-insensitively), or None."""
        wanted = name.casefold()
        for fp, petname in self.all().items():
            if petname.casefold() == wanted:
                return fp
        return None

    def set(self, fp: str, name: str) -> str | None:
        """Name ``fp`` (a full fingerprint); returns the petname it replaced, if any.

        Raises :class:`BadInput` for a bad fingerprint or petname and
        :class:`Conflict` if another key already has that name.
        """
        names.fingerprint(fp)
        check_petname(name)
        with self.file.update() as data:
            for other, petname in data.items():
                if other != fp and isinstance(petname, str) \
                        and petname.casefold() == name.casefold():
                    raise Conflict(f"{name!r} already names {short(other)}", field="name")
            old = data.get(fp)
            data[fp] = name
        return old if isinstance(old, str) else None

    def clear(self, fp: str) -> bool:
        """Forget the petname of ``fp``; True if it had one."""
        names.fingerprint(fp)
        with self.file.update() as data:
            return data.pop(fp, None) is not None


def known_fingerprints(dd: DataDir) -> set[str]:
    """Every fingerprint whose key this node holds: ``identities/*.pub`` and the group
    directories (the blocked included)."""
    found: set[str] = set()
    with os.scandir(dd.identities) as top:
        folders = [dd.identities, *(Path(e.path) for e in top if e.is_dir())]
    for folder in folders:
        with os.scandir(folder) as entries:
            for e in entries:
                stem = e.name[:-4]
                if e.name.endswith(".pub") and names.FINGERPRINT_RE.fullmatch(stem):
                    found.add(stem)
    return found


def resolve(dd: DataDir, text: str, *, field: str = "fingerprint") -> str:
    """The fingerprint a person means by ``text``.

    Accepts a full fingerprint (returned as it is, known or not), a petname, or
    a hex prefix of at least :data:`MIN_PREFIX` characters matching exactly one
    key this node holds. Raises :class:`BadInput` for a short or ambiguous
    prefix (listing the candidates) or text that cannot be a name, and
    :class:`NotFound` when nothing matches.
    """
    if not isinstance(text, str):
        raise BadInput(f"{field} must be a fingerprint, a prefix or a petname", field=field)
    value = text.strip()
    if names.FINGERPRINT_RE.fullmatch(value):
        return value
    named = Petnames(dd).fingerprint_of(value) if PETNAME_RE.fullmatch(value) else None
    if named is not None:
        return named
    lowered = value.lower()
    if _HEX_RE.fullmatch(lowered) and len(lowered) < 64:
        if len(lowered) < MIN_PREFIX:
            raise BadInput(f"{field} {value!r}: a fingerprint prefix needs at least "
                           f"{MIN_PREFIX} hex characters", field=field)
        matches = sorted(fp for fp in known_fingerprints(dd) if fp.startswith(lowered))
        if len(matches) == 1:
            return matches[0]
        if matches:
            listed = ", ".join(short(fp) for fp in matches[:10])
            raise BadInput(f"{field} {value!r} is ambiguous: it starts {len(matches)} "
                           f"fingerprints ({listed}); type more of it", field=field)
        raise NotFound(f"{field} {value!r}: no key here starts with it", field=field)
    if PETNAME_RE.fullmatch(value) and not _HEX_RE.fullmatch(lowered):
        raise NotFound(f"{field} {value!r}: no petname or key by that name", field=field)
    raise BadInput(f"{field} {value[:70]!r} is not a fingerprint (64 lowercase hexadecimal "
                   f"characters), a prefix of at least {MIN_PREFIX} of them, or a petname",
                   field=field)
