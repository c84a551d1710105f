"""Admin routes for identities: create, import, list, show, delete, sign, change password,
rotate the transport key."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from flask import current_app
from flask.views import MethodView

from ..core.base.encoding import b64d
from ..core.identity.identities import Identities
from ..schemas import identity as s
from ..web.api import Blueprint
from .names import display_names

blp = Blueprint("identities", __name__, url_prefix="/identities",
                description="Own identities (key pairs) and others' public keys")


def store() -> Identities:
    return Identities(current_app.config["DIWAN"])


@blp.route("")
class IdentityCollection(MethodView):
    @blp.response(200, s.IdentityList)
    def get(self) -> dict[str, Any]:
        """List every identity: own or not, groups, blocked, last used."""
        names = display_names()
        return {"identities": [{**asdict(i), "display_name": names(i.fingerprint)}
                               for i in store().list()]}

    @blp.arguments(s.CreateIdentity)
    @blp.response(201, s.Created)
    def post(self, body: dict[str, Any]) -> dict[str, Any]:
        """Create an own identity (``password``) or import a ``.pub`` document (``public_key``)."""
        if "password" in body:
            return {"fingerprint": store().create(body["password"]), "own": True}
        fp = store().import_pub(body["public_key"])
        return {"fingerprint": fp, "own": store().is_own(fp)}


@blp.route("/<fp>")
class IdentityItem(MethodView):
    @blp.arguments(s.FingerprintPath, location="view_args")
    @blp.response(200, s.IdentityOut)
    def get(self, path: dict[str, str], fp: str) -> dict[str, Any]:
        """One identity with its ``.pub`` document."""
        info = asdict(store().info(path["fp"], with_key=True))
        return {**info, "display_name": display_names()(path["fp"])}

    @blp.arguments(s.FingerprintPath, location="view_args")
    @blp.arguments(s.DeleteIdentity, required=False)
    @blp.response(204)
    def delete(self, path: dict[str, str], body: dict[str, Any], fp: str) -> None:
        """Delete an identity; an own identity only with its password."""
        store().delete(path["fp"], body.get("password"))


@blp.route("/<fp>/sign", methods=["POST"])
@blp.arguments(s.FingerprintPath, location="view_args")
@blp.arguments(s.SignIn)
@blp.response(200, s.SignOut)
def sign(path: dict[str, str], body: dict[str, Any], fp: str) -> dict[str, Any]:
    """Sign ``content`` with an own identity's key, under the user-signature context.

    The signature is Ed25519 over ``diwan/v2/user-signature`` 0x00 ``content``
    (protocol.md, "Signatures"), so it can never pass as a post or a certificate.
    """
    if body["encoding"] == "utf-8":
        content = body["content"].encode("utf-8")
    else:
        content = b64d(body["content"], what="content", field="content")
    signature = store().sign(path["fp"], body["password"], content)
    return s.sign_result(path["fp"], signature)


@blp.route("/<fp>/password", methods=["POST"])
@blp.arguments(s.FingerprintPath, location="view_args")
@blp.arguments(s.PasswordIn)
@blp.response(200, s.Ok)
def change_password(path: dict[str, str], body: dict[str, Any], fp: str) -> dict[str, Any]:
    """Re-seal an own identity's key under a new password (the old one is required)."""
    store().change_password(path["fp"], body["old_password"], body["new_password"])
    return {"ok": True, "changed": True}


@blp.route("/<fp>/transport", methods=["POST"])
@blp.arguments(s.FingerprintPath, location="view_args")
@blp.arguments(s.RotateIn)
@blp.response(200, s.RotateOut)
def rotate_transport(path: dict[str, str], body: dict[str, Any], fp: str) -> dict[str, Any]:
    """Give this node a new transport key for an own identity (serial + 1).

    The previous key stays usable for ``transport_grace_seconds``; contacts
    learn the new certificate from the ``.pub`` document.
    """
    ids = store()
    serial = ids.rotate_transport(path["fp"], body["password"])
    return _certified(path["fp"], ids.device_id(path["fp"]), serial)


@blp.route("/<fp>/devices/<device>/retire", methods=["POST"])
@blp.arguments(s.DevicePath, location="view_args")
@blp.arguments(s.RotateIn)
@blp.response(200, s.RotateOut)
def retire_device(path: dict[str, str], body: dict[str, Any], fp: str,
                  device: str) -> dict[str, Any]:
    """Retire another node (device) of an own identity, one lost or stolen.

    Its certificate gets the retired serial (2^53-1) with a transport key nobody holds;
    contacts and the identity's other nodes merge it at their next exchange with a node
    of it.
    """
    serial = store().retire_device(path["fp"], path["device"], body["password"])
    return _certified(path["fp"], path["device"], serial)


def _certified(fp: str, device: str, serial: int) -> dict[str, Any]:
    """The answer of a rotation or a retire: the device's new serial and the ``.pub``."""
    return {"fingerprint": fp, "device": device, "serial": serial,
            "public_key": store().pub_document(fp).decode("ascii")}
