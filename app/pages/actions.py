"""The people page: contacts with their sync status, other known keys, follow, name, block."""

from __future__ import annotations

from flask import redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from ..core.base.errors import BadInput
from ..core.identity.identities import Identities
from ..core.identity.petnames import Petnames, resolve, short
from ..core.network.contacts import Contacts
from ..core.network.keylookup import add_contact
from ..core.network.views import contact_view
from ..core.posts.display import DisplayNames
from .auth import dd
from .compose import own_identities
from .person import back_to
from .site import blp


@blp.get("/people")
def people() -> ResponseReturnValue:
    """Contacts with their sync status, every other known key, and the forms to act on them."""
    names = DisplayNames(dd())
    ids = Identities(dd())
    contacts = [contact_view(dd(), c, names) for c in Contacts(dd()).list()]
    followed = {c["fingerprint"] for c in contacts}
    others = [{"fingerprint": i.fingerprint, "name": names(i.fingerprint),
               "short": short(i.fingerprint), "blocked": ids.is_blocked(i.fingerprint)}
              for i in ids.list() if not i.own and i.fingerprint not in followed]
    return render_template("people.html", contacts=contacts, others=others,
                           identities=own_identities(names))


@blp.post("/people/follow")
def follow() -> ResponseReturnValue:
    """Follow a key at a node address as one own identity, naming it if a name is given."""
    fp = request.form.get("fingerprint", "").strip().lower()
    identity = resolve(dd(), request.form.get("identity", ""), field="identity")
    add_contact(dd(), fp, request.form.get("address", ""), identity)
    if petname := request.form.get("petname", "").strip():
        Petnames(dd()).set(fp, petname)
    return redirect(url_for("pages.people"), code=303)


@blp.post("/people/name")
def name() -> ResponseReturnValue:
    """Give a key a petname (empty: forget it)."""
    fp = resolve(dd(), request.form.get("fingerprint", ""))
    petname = request.form.get("petname", "").strip()
    if petname:
        Petnames(dd()).set(fp, petname)
    else:
        Petnames(dd()).clear(fp)
    return back_to(fp)


@blp.post("/people/block")
def block() -> ResponseReturnValue:
    """Block (``action=block``) or unblock (``action=unblock``) a key."""
    fp = resolve(dd(), request.form.get("fingerprint", ""))
    action = request.form.get("action")
    if action == "block":
        Identities(dd()).block(fp)
    elif action == "unblock":
        Identities(dd()).unblock(fp)
    else:
        raise BadInput("action must be block or unblock", field="action")
    return back_to(fp)
