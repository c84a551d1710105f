"""The invite page: make an invite (its line and QR code) and redeem a friend's.

Making one signs with the identity's key: an identity unlocked in this session
signs without a password, otherwise the form takes it for that one invite (as
the compose page does). The PNG of the QR code is made again from the invite
line the form posts back (nothing is stored for it).
"""

from __future__ import annotations

from flask import Response, render_template, request
from flask.typing import ResponseReturnValue

from ..core.base.errors import BadInput
from ..core.identity.identities import Identities
from ..core.identity.petnames import resolve
from ..core.network import inviteqr, invitestate
from ..core.network.contacts import Contacts
from ..core.network.invites import MAX_INVITE_CHARS, parse_invite
from ..core.network.syncstatus import StatusStore
from ..core.posts.display import DisplayNames
from .auth import dd
from .compose import _seed, own_identities
from .site import blp


def _page(**extra: object) -> str:
    names = DisplayNames(dd())
    context: dict[str, object] = {"made": None, "redeemed": None, **extra}
    return render_template("invite.html", identities=own_identities(names), **context)


@blp.get("/invite")
def invite() -> ResponseReturnValue:
    """The forms: make an invite, redeem a friend's."""
    return _page()


@blp.post("/invite")
def make_invite() -> ResponseReturnValue:
    """Sign a new invite for an own identity and show its line and QR code."""
    fp = resolve(dd(), request.form.get("identity", ""), field="identity")
    seed = _seed(fp)
    if seed is None:
        password = request.form.get("password", "")
        if not password:
            raise BadInput("unlock the identity first, or give its password", field="password")
        seed = Identities(dd()).open_seed(fp, password)
    text, made = invitestate.make(dd(), fp, seed, token=bool(request.form.get("token")))
    size, path = inviteqr.svg_path(text)
    return _page(made={"text": text, "qr_size": size, "qr_path": path, **made.to_dict()})


@blp.post("/invite/qr.png")
def invite_png() -> ResponseReturnValue:
    """The QR code of the posted invite line as a PNG download (checked first)."""
    text = request.form.get("invite", "")[:MAX_INVITE_CHARS + 1]
    parse_invite(text, now=0)  # only invite lines are drawn
    return Response(inviteqr.png(text), mimetype="image/png",
                    headers={"Content-Disposition": 'attachment; filename="diwan-invite.png"'})


@blp.post("/invite/redeem")
def redeem() -> ResponseReturnValue:
    """Follow a friend from their invite line; shows where the invite stands."""
    identity = resolve(dd(), request.form.get("identity", ""), field="identity")
    contact, created, _ = invitestate.accept(dd(), request.form.get("invite", ""), identity)
    state = invitestate.link_state(dd(), contact, StatusStore(dd()).get(contact.fingerprint))
    return _page(redeemed={"name": DisplayNames(dd())(contact.fingerprint),
                           "addresses": Contacts(dd()).get(contact.fingerprint).addresses,
                           "created": created, "state": state})
