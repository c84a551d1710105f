"""Fuzz every admin and peer route with schemathesis, from the apps' own OpenAPI documents.

Bounded (a few examples per operation, in-process through WSGI) and
authenticated (the admin token is sent, so requests reach the routes past the
guard). Two checks: no server error, and every response matches the document
(status, content type, schema). A canary app whose one route raises proves the
fuzzer notices a 500.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path
from typing import Any

import hypothesis
import pytest
import schemathesis
from flask.views import MethodView
from hypothesis import HealthCheck
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from app import create_admin_app, create_peer_app
from app.web.api import Blueprint
from tests.helpers.datadirs import PASSWORD, make_datadir

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]
SETTINGS = hypothesis.settings(max_examples=12, deadline=None, derandomize=True,
                               database=None,
                               suppress_health_check=list(HealthCheck))


def _node(tmp: Path, **settings: Any) -> tuple[Any, Any, str]:
    dd = make_datadir(tmp, **settings)
    from app.core.identity.identities import Identities
    Identities(dd).create(PASSWORD)
    admin = create_admin_app({"data_dir": str(tmp), **settings})
    peer = create_peer_app({"data_dir": str(tmp), **settings})
    return admin, peer, dd.token_path.read_text("ascii").strip()


# schemathesis builds its tests at import, so the node is made at import too (removed at exit)
_ROOT = Path(tempfile.mkdtemp(prefix="diwan-fuzz-"))
atexit.register(shutil.rmtree, _ROOT, ignore_errors=True)
ADMIN, PEER, TOKEN = _node(_ROOT / "node", key_server=True)
HEADERS = {"Authorization": f"Bearer {TOKEN}", "Host": "127.0.0.1"}

admin_schema = schemathesis.openapi.from_wsgi("/openapi.json", ADMIN, headers=HEADERS)
peer_schema = schemathesis.openapi.from_wsgi("/openapi.json", PEER)


@admin_schema.parametrize()
@SETTINGS
def test_admin_routes(case: Any) -> None:
    case.call_and_validate(headers=HEADERS, checks=CHECKS)


@peer_schema.parametrize()
@SETTINGS
def test_peer_routes(case: Any) -> None:
    case.call_and_validate(checks=CHECKS)


def _canary_app(tmp: Path) -> Any:
    app = create_peer_app({"data_dir": str(tmp)})
    blp = Blueprint("canary", __name__, url_prefix="/canary")

    @blp.route("")
    class Canary(MethodView):
        @blp.response(200)
        def get(self) -> dict[str, str]:
            """Always breaks: the fuzzer must report it."""
            raise RuntimeError("planted")

    app.extensions["flask-smorest"]["apis"][""]["ext_obj"].register_blueprint(blp)
    return app


def test_the_fuzzer_notices_a_server_error(tmp_path: Path) -> None:
    app = _canary_app(tmp_path / "canary")
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app)
    operation = schema["/canary"]["GET"]
    case = operation.Case()
    with pytest.raises(BaseException) as found:  # schemathesis raises a FailureGroup
        case.call_and_validate(checks=[not_a_server_error])
    assert "Server error" in repr(found.value.exceptions), found.value
