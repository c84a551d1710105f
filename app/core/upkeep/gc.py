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
import time
from collections.abc import Callable

from ..base.datadir import DataDir
from ..base.errors import BadPost
from ..base.fsio import remove_quiet
from ..identity.identities import Identities
from ..network.contacts import Contacts
from ..posts.codec import decode_post, inner_authors
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
    """Authors (fingerprints) of the posts indexed here and the inner authors of indexed
    reshares, at any depth. Unreadable post files are skipped; raises no project error."""
    index = open_index(dd)
    c = index.conn()
    authors = {index.fp_of(row[0]) for row in c.execute("SELECT DISTINCT author FROM posts")}
    for sha, author in c.execute("SELECT sha, author FROM posts WHERE reshare"):
        try:
            raw = (dd.posts / index.fp_of(author) / sha.hex()).read_bytes()
            post = decode_post(raw, max_bytes=dd.settings["max_post_bytes"])
        except (OSError, BadPost):
            continue
        authors.update(inner_authors(post, dd.settings["max_post_bytes"]))
    return authors


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
