"""flask-smorest glue: validation errors are 400s and the OpenAPI document is generated."""

from __future__ import annotations

import json
from typing import Any

import flask_smorest
from flask import Flask
from webargs.flaskparser import FlaskParser

from . import errors


class Parser(FlaskParser):
    DEFAULT_VALIDATION_STATUS = 400

    def _raw_load_json(self, req: Any) -> Any:
        try:
            return super()._raw_load_json(req)
        except RecursionError:  # deeply nested JSON is bad input, not a crash
            raise json.JSONDecodeError("JSON nested too deeply", "<body>", 0) from None


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
