"""The contact as the admin API and the CLI both show it (one shape for both front ends)."""

from __future__ import annotations

from typing import Any

from ..base.datadir import DataDir
from ..identity.identities import Identities
from ..identity.petnames import Petnames
from ..posts.display import DisplayNames
from .contacts import Contact
from .invitestate import link_state
from .syncstatus import StatusStore


def contact_view(dd: DataDir, contact: Contact, names: DisplayNames) -> dict[str, Any]:
    """``Contact.to_dict()`` plus ``display_name``, ``petname`` and ``sync`` (the
    :class:`SyncStatus` dict, whose ``state`` reads ``blocked`` for a blocked contact) and
    ``invite`` (where the invite it came from stands, :func:`invitestate.link_state`)."""
    found = StatusStore(dd).get(contact.fingerprint)
    found.blocked = Identities(dd).is_blocked(contact.fingerprint)
    status = found.to_dict()
    return {**contact.to_dict(), "display_name": names(contact.fingerprint),
            "petname": Petnames(dd).get(contact.fingerprint), "sync": status,
            "invite": link_state(dd, contact, found)}
