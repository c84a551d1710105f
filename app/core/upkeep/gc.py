"""Clean-up: forget other people's public keys that have not been used for a long time.

Every use of a key touches its ``.pub`` file (see ``Identities.touch``), so
the file's mtime says when it was last needed. :func:`gc` deletes
``identities/<FP>.pub`` files unused for ``gc_unused_days`` days, except own
identities, contacts, members of any group (the blocked included), the
identities contacts are followed by, and the authors of posts stored here
(including the inner authors of stored reshares): their keys are what verifies
those files when the index is rebuilt. A deleted key is fetched again by
fingerprint if content ever needs it.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

from ..base.datadir import DataDir
from ..base.errors import BadPost
from ..base.fsio import is_temp_name, remove_quiet
from ..base.names import FINGERPRINT_RE
from ..identity.identities import Identities
from ..network.contacts import Contacts
from ..posts.codec import decode_post, inner_authors
from ..posts.index import Index
from ..posts.reconcile import open_index

log = logging.getLogger("diwan.gc")
DAY = 86400


def kept(dd: DataDir) -> set[str]:
    """Fingerprints whose keys are never cleaned up: own identities, contacts and the own
    identities following them, group members (blocked included), stored posts' authors.

    Raises :class:`CorruptFile` for a damaged ``state/contacts.json`` (and
    :class:`NotFound` only if a group is deleted while it is being read).
    """
    ids = Identities(dd)
    keep = set(ids.own_fingerprints())
    for contact in Contacts(dd).list():
        keep.update((contact.fingerprint, contact.identity))
    for group in ids.groups():
        keep.update(ids.members(group))
    keep.update(stored_authors(dd))
    return keep


def stored_authors(dd: DataDir) -> set[str]:
    """Fingerprints whose keys stored post files need, decided from the files themselves.

    Every author with a file under ``posts/<FP>/`` (indexed or not: restored or
    copied files count before any reindex), and the inner authors, at any
    depth, of every stored reshare: those the index knows, plus every file the
    index does not hold yet, read and decoded here. Unreadable or invalid
    files are skipped; raises no project error.
    """
    max_bytes = dd.settings["max_post_bytes"]
    authors = set(_author_dirs(dd))
    index = open_index(dd, auto_reconcile=False)
    try:
        c = index.conn()
        for sha, author in c.execute("SELECT sha, author FROM posts WHERE reshare"):
            authors.update(_file_inner_authors(dd.posts / index.fp_of(author) / sha.hex(),
                                               max_bytes))
        for fp in _author_dirs(dd):
            for path in _unindexed(dd, index, fp):
                authors.update(_file_inner_authors(path, max_bytes))
    finally:
        index.close()
    return authors


def _author_dirs(dd: DataDir) -> list[str]:
    """Fingerprints with at least one post file under ``posts/``."""
    try:
        entries = list(os.scandir(dd.posts))
    except FileNotFoundError:
        return []
    return [e.name for e in entries if FINGERPRINT_RE.fullmatch(e.name) and e.is_dir()
            and any(not is_temp_name(n) for n in os.listdir(e.path))]


def _unindexed(dd: DataDir, index: Index, fp: str) -> list[Path]:
    """Post files of ``fp`` that the index does not hold (yet)."""
    known = {row[0].hex() for row in index.conn().execute(
        "SELECT p.sha FROM posts p JOIN fps f ON f.id = p.author WHERE f.fp = ?", (fp,))}
    folder = dd.posts / fp
    return [folder / n for n in os.listdir(folder) if n not in known and not is_temp_name(n)]


def _file_inner_authors(path: Path, max_bytes: int) -> set[str]:
    try:
        post = decode_post(path.read_bytes(), max_bytes=max_bytes)
    except (OSError, BadPost):
        return set()
    return inner_authors(post, max_bytes)


def _unused(ids: Identities, keep: set[str], cutoff: float) -> list[str]:
    out = []
    for fp in ids.all_fingerprints():
        if fp in keep or ids.is_own(fp):
            continue
        try:
            if ids.pub_path(fp).stat().st_mtime < cutoff:
                out.append(fp)
        except FileNotFoundError:
            continue
    return out


def gc(dd: DataDir, *, dry_run: bool, clock: Callable[[], float] = time.time) -> list[str]:
    """Delete (or with ``dry_run`` only list) unused keys; return their fingerprints.

    A key is unused when its ``.pub`` mtime is older than ``gc_unused_days`` days before
    ``clock()`` (unix seconds) and :func:`kept` does not hold it; the list is checked again
    just before deleting. Raises :class:`CorruptFile` as :func:`kept` does.
    """
    ids = Identities(dd)
    cutoff = clock() - dd.settings["gc_unused_days"] * DAY
    candidates = _unused(ids, kept(dd), cutoff)
    if dry_run or not candidates:
        return candidates
    # look again just before deleting: a key may have been used, or made a contact, meanwhile
    again = set(_unused(ids, kept(dd), cutoff))
    gone = [fp for fp in candidates if fp in again and remove_quiet(ids.pub_path(fp))]
    if gone:
        log.info("removed %d unused public keys", len(gone))
    return gone


def explain(dd: DataDir, fingerprints: list[str], *,
            clock: Callable[[], float] = time.time) -> dict[str, str]:
    """Why each of ``fingerprints`` (from :func:`gc` with ``dry_run``) may be deleted.

    One sentence per key: how long it has been unused and that nothing that
    keeps keys needs it. Raises no project error.
    """
    days = dd.settings["gc_unused_days"]
    out = {}
    for fp in fingerprints:
        try:
            idle = (clock() - Identities(dd).pub_path(fp).stat().st_mtime) / DAY
        except FileNotFoundError:
            continue
        out[fp] = (f"unused for {idle:.0f} days (more than {days}); not an own identity, a "
                   "contact, a contact's identity or a group member, and no stored post "
                   "(indexed or not, reshared ones included) needs it")
    return out
