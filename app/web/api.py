"""flask-smorest glue: validation errors are 400s and the OpenAPI document is generated."""

from __future__ import annotations

import re
from typing import Any

import flask_smorest
from apispec import BasePlugin
from flask import Flask, current_app
from flask.json.provider import DefaultJSONProvider
from flask.views import MethodView
from marshmallow import Schema, fields
from webargs import core
from webargs.flaskparser import FlaskParser, is_json_request

from ..core.base import names, strictjson
from . import errors


def load_json(data: bytes | str, field: str = "json", app: Flask | None = None) -> Any:
    """The one parser of every JSON request body and JSON form field of both apps.

    :func:`strictjson.loads` with the node's ``max_json_depth``: a body that is
    not UTF-8 JSON, nests too deeply or holds an unsafe number is a
    :class:`strictjson.BadJson` (400) naming ``field``.
    """
    depth = (app or current_app).config["DIWAN"].settings["max_json_depth"]
    return strictjson.loads(data, max_depth=depth, what="the JSON body", field=field)


class JSONProvider(DefaultJSONProvider):
    """Flask's JSON for both apps: bounded strict parsing in, strict JSON (no NaN) out."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return load_json(s, app=self._app)

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        kwargs.setdefault("allow_nan", False)
        return super().dumps(obj, **kwargs)


class Parser(FlaskParser):
    DEFAULT_VALIDATION_STATUS = 400

    def _raw_load_json(self, req: Any) -> Any:
        if not is_json_request(req):
            return core.missing
        return load_json(req.get_data(cache=True))


class Blueprint(flask_smorest.Blueprint):
    ARGUMENTS_PARSER = Parser()

    def arguments(self, schema: Any, *, location: str = "json", **kwargs: Any) -> Any:
        # webargs reads "path" like "view_args", but only "path" is an OpenAPI location
        if location == "view_args":
            location = "path"
        return super().arguments(schema, location=location, **kwargs)


class Api(flask_smorest.Api):
    def _register_error_handlers(self) -> None:
        errors.register(self._app)


# Path parameters by name: every route names its parameters the same way, so the
# document gives each one its pattern (ECMA-262, anchored ^...$).
PATH_PATTERNS = {
    "fp": f"^{names.FINGERPRINT_RE.pattern}$",
    "sha": f"^{names.SHA1_RE.pattern}$",
    "name": f"^{names.GROUP_RE.pattern}$",
    "attribute": "^[A-Z0-9]+(_[A-Z0-9]+)*$",
    "id": "^[0-9a-f]{16,64}$",
}


class ContractPlugin(BasePlugin):  # type: ignore[misc]
    """Completes the OpenAPI document: an ``operationId`` for every operation and the
    pattern of every path parameter."""

    def path_helper(self, path: str | None = None, operations: dict[str, Any] | None = None,
                    parameters: list[Any] | None = None, **kwargs: Any) -> None:
        for param in parameters or []:
            if isinstance(param, dict) and param.get("in") == "path":
                pattern = PATH_PATTERNS.get(param.get("name", ""))
                if pattern:
                    param["schema"] = {"type": "string", "pattern": pattern}
        rule = kwargs.get("rule")
        for method, operation in (operations or {}).items():
            if rule is not None and isinstance(operation, dict):
                name = re.sub(r"[^A-Za-z0-9]+", "_", f"{rule.endpoint}_{method}")
                operation.setdefault("operationId", name)


class Health(Schema):
    status = fields.String(metadata={"description": "always ok"})
    app = fields.String(metadata={"description": "admin or peer"})


def add_health(api: Api, app_name: str) -> None:
    """``GET /health``: liveness, open without a token (documented like every route)."""
    blp = Blueprint("health", __name__, description="Liveness")

    @blp.route("/health")
    class HealthCheck(MethodView):
        @blp.doc(security=[])
        @blp.response(200, Health)
        def get(self) -> dict[str, str]:
            """Liveness: answers as soon as the app serves requests."""
            return {"status": "ok", "app": app_name}

    api.register_blueprint(blp)


def make_api(app: Flask, title: str, description: str) -> Api:
    app.config.update(
        API_TITLE=title,
        API_VERSION="1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
    )
    spec_kwargs: dict[str, Any] = {"info": {"description": description},
                                   "extra_plugins": [ContractPlugin()]}
    api = Api(app, spec_kwargs=spec_kwargs)
    return api
