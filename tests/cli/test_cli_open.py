"""``diwan open``: a one-time sign-in link that works once, and the banner's page URL."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from click.testing import CliRunner

from app import create_admin_app
from app.cli import main
from app.cli.node import describe
from app.core.base.datadir import DataDir
from tests.helpers.datadirs import make_datadir


def test_open_prints_a_link_that_signs_in_once(tmp_path: Path) -> None:
    dd = make_datadir(tmp_path / "n")
    toml = dd.root / "diwan.toml"
    toml.write_text(toml.read_text().replace("admin_port = 8888", "admin_port = 8999"))
    result = CliRunner().invoke(main, ["--data-dir", str(tmp_path / "n"), "--json", "open"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    url = urlsplit(out["url"])
    assert (url.scheme, url.netloc, url.path) == ("http", "127.0.0.1:8999", "/login")
    assert out["page"] == "http://127.0.0.1:8999/" and out["expires_in"] == 120
    assert out["running"] is False  # no node runs here: the human output says so
    human = CliRunner().invoke(main, ["--data-dir", str(tmp_path / "n"), "open"]).output
    assert "no node runs in" in human and "diwan up" in human
    code = parse_qs(url.query)["code"][0]
    client = create_admin_app({"data_dir": str(tmp_path / "n")}).test_client()
    assert client.get(f"/login?code={code}").status_code == 302
    assert client.application.test_client().get(f"/login?code={code}").status_code == 403


def test_the_banner_names_the_page_url(tmp_path: Path) -> None:
    settings = {"admin_host": "0.0.0.0", "admin_expose": True}
    dd = make_datadir(tmp_path / "n", **settings)
    assert describe(DataDir(dd.root, settings, environ={}))["page_url"] \
        == "http://127.0.0.1:8888/"


def test_the_access_log_leaves_query_strings_out() -> None:
    conf = (Path(__file__).resolve().parents[2] / "app/run/gunicorn_conf.py").read_text()
    line = next(ln for ln in conf.splitlines() if ln.startswith("access_log_format"))
    assert "%(U)s" in line and "%(r)s" not in line and "%(q)s" not in line


def test_the_access_log_escapes_what_a_stranger_puts_in_the_path() -> None:
    """A decoded path with a newline, an escape, a NUL or a bidi override cannot forge a
    log line or garble a terminal (the peer port answers strangers)."""
    import datetime
    import types

    from gunicorn.config import Config

    from app.run.accesslog import SafeLogger

    conf = (Path(__file__).resolve().parents[2] / "app/run/gunicorn_conf.py").read_text()
    assert 'logger_class = "app.run.accesslog.SafeLogger"' in conf
    environ = {"REQUEST_METHOD": "GET", "RAW_URI": "/x", "SERVER_PROTOCOL": "HTTP/1.1",
               "PATH_INFO": "/x\nFAKE 200\x1b[31mred\x00\u202eevil", "REMOTE_ADDR": "127.0.0.1"}
    resp = types.SimpleNamespace(status="404 NOT FOUND", sent=10, headers=[])
    atoms = SafeLogger(Config()).atoms(resp, [], environ, datetime.timedelta(seconds=0))
    assert atoms["U"] == "/x\\x0aFAKE 200\\x1b[31mred\\x00\\u202eevil"
    assert not any(c in atoms["U"] for c in "\n\x1b\x00\u202e")


def test_the_node_s_access_log_format_gets_gunicorn_s_atoms_computed_cheaply() -> None:
    """Only the atoms the format names are made (not gunicorn's table of every header and
    environ entry), with gunicorn's own values, escaped as before."""
    import datetime
    import re
    import types

    from gunicorn.config import Config
    from gunicorn.glogging import Logger

    from app.run.accesslog import _CHEAP, SafeLogger, format_atoms

    conf = (Path(__file__).resolve().parents[2] / "app/run/gunicorn_conf.py").read_text()
    log_format = re.search(r"^access_log_format = '(.*)'$", conf, re.M).group(1)  # type: ignore[union-attr]
    assert format_atoms(log_format) <= _CHEAP.keys()
    cfg = Config()
    cfg.set("access_log_format", log_format)
    environ = {"REQUEST_METHOD": "POST", "RAW_URI": "/feeds/x?y", "SERVER_PROTOCOL": "HTTP/1.1",
               "PATH_INFO": "/feeds/x\n", "QUERY_STRING": "y", "REMOTE_ADDR": "::1",
               "HTTP_USER_AGENT": "agent"}
    for sent, status in ((1024, "200 OK"), (None, 404)):
        resp = types.SimpleNamespace(status=status, sent=sent, headers=[("A", "b")])
        took = datetime.timedelta(seconds=2, microseconds=3456)
        cheap = SafeLogger(cfg).atoms(resp, [], environ, took)
        full = Logger(cfg).atoms(resp, [], environ, took)
        assert set(cheap) == format_atoms(log_format)
        assert {k: v for k, v in cheap.items() if k != "U"} == {k: full[k] for k in cheap
                                                                 if k != "U"}
        assert cheap["U"] == "/feeds/x\\x0a"
        assert {k: f(resp, environ, took) for k, f in _CHEAP.items()} == {
            k: full[k] for k in _CHEAP}
