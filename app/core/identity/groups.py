"""Renaming a group: one directory rename, so no reader ever sees it half done.

Groups are sub-directories of ``identities/`` holding copies of members' ``.pub``
files (:class:`app.core.identity.identities.Identities` creates, lists and deletes
them); ``blocked`` is reserved.
"""

from __future__ import annotations

import os

from ..base import names
from ..base.datadir import DataDir
from ..base.errors import Conflict, Forbidden
from ..base.fsio import file_lock, fsync_dir
from .identities import Identities


def rename_group(dd: DataDir, old: str, new: str) -> None:
    """Rename group ``old`` to ``new`` (members kept) with one atomic ``rename``.

    Raises :class:`BadName` for a bad name, :class:`Forbidden` if either is ``blocked``,
    :class:`NotFound` if ``old`` does not exist and :class:`Conflict` if ``new`` does.
    """
    ids = Identities(dd)
    names.group(new, field="new_name")
    if names.BLOCKED in (old, new):
        raise Forbidden("the blocked group is reserved", field="name")
    source = ids.group_dir(old)
    target = ids.group_dir(new, must_exist=False)
    with file_lock(dd.locks / "groups.lock"):
        if target.exists():
            raise Conflict(f"there is already a group named {new}", field="new_name")
        os.rename(source, target)
        fsync_dir(ids.dir)
