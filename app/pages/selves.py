"""The identities page: create, switch to, unlock and lock (:mod:`.compose`), rotate the
transport key, retire another (lost or stolen) node of the identity, and per-identity
settings (with whom comments are shared)."""

from __future__ import annotations

from flask import redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue

from ..core.base import names
from ..core.base.errors import BadInput, NotFound, WrongPassword
from ..core.identity.identities import Identities
from ..core.identity.petnames import resolve
from ..core.network.feeds import get_share_comments_group, set_share_comments_group
from ..core.posts.display import DisplayNames
from .auth import dd
from .compose import own_identities
from .site import blp


def _own(field: str = "fingerprint") -> str:
    fp = resolve(dd(), request.form.get(field, ""), field=field)
    if not Identities(dd()).is_own(fp):
        raise NotFound(f"{fp} is not one of this node's own identities", field=field)
    return fp


def _back() -> ResponseReturnValue:
    return redirect(url_for("pages.identities"), code=303)


@blp.get("/me")
def identities() -> ResponseReturnValue:
    """Own identities: switch, unlock, lock, rotate keys, retire another node, settings;
    and a form to create one."""
    ids = Identities(dd())
    rows = own_identities(DisplayNames(dd()))
    for row in rows:
        row["share_comments_with"] = get_share_comments_group(dd(), row["fingerprint"]) or ""
        mine = ids.device_id(row["fingerprint"])
        row["other_devices"] = [d.device_id for d in ids.public_key(
            row["fingerprint"], touch=False).live_devices if d.device_id != mine]
    groups = [g for g in ids.groups() if g != names.BLOCKED]
    return render_template("identities.html", identities=rows, groups=groups,
                           rotated=request.args.get("rotated"),
                           retired=request.args.get("retired"))


@blp.post("/me")
def create_identity() -> ResponseReturnValue:
    """Create an own identity with a password (typed twice)."""
    password = request.form.get("password", "")
    if password != request.form.get("repeat", ""):
        raise BadInput("the two passwords differ", field="password")
    Identities(dd()).create(password)  # the core's password rules (length) apply
    return _back()


@blp.post("/me/switch")
def switch_identity() -> ResponseReturnValue:
    """Make an own identity this session's current one (listed and chosen first)."""
    session["current"] = _own()
    return _back()


@blp.post("/me/rotate")
def rotate_keys() -> ResponseReturnValue:
    """Give an own identity a new transport key (its password; the old key stays usable
    for ``transport_grace_seconds`` while contacts learn the new one)."""
    fp = _own()
    try:
        serial = Identities(dd()).rotate_transport(fp, request.form.get("password", ""))
    except WrongPassword:
        return render_template("error.html", code=403,
                               message="Wrong password: the keys were not rotated."), 403
    return redirect(url_for("pages.identities", rotated=serial), code=303)


@blp.post("/me/retire")
def retire_device() -> ResponseReturnValue:
    """Retire another node (device) of an own identity, one lost or stolen (its password;
    contacts refuse the node from their next sync with a node of the identity)."""
    fp, device = _own(), request.form.get("device", "")
    try:
        Identities(dd()).retire_device(fp, device, request.form.get("password", ""))
    except WrongPassword:
        return render_template("error.html", code=403,
                               message="Wrong password: nothing was retired."), 403
    return redirect(url_for("pages.identities", retired=device), code=303)


@blp.post("/me/settings")
def identity_settings() -> ResponseReturnValue:
    """Share an own identity's comments with a group (empty: with nobody else)."""
    group = request.form.get("share_comments_with", "").strip() or None
    set_share_comments_group(dd(), _own(), group)
    return _back()
