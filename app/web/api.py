"""flask-smorest glue: validation errors are 400s and the OpenAPI document is generated."""

from __future__ import annotations

from typing import Any

import flask_smorest
from flask import Flask, current_app
from flask.json.provider import DefaultJSONProvider
from webargs import core
from webargs.flaskparser import FlaskParser, is_json_request

from ..core.base import strictjson
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


def make_api(app: Flask, title: str, description: str) -> Api:
    app.config.update(
        API_TITLE=title,
        API_VERSION="1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
    )
    spec_kwargs: dict[str, Any] = {"info": {"description": description}}
    api = Api(app, spec_kwargs=spec_kwargs)
    return api
