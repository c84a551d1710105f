"""Login codes and sessions of the web pages: single use, expiry, hashed at rest, 0600."""

from __future__ import annotations

import time

from app.core.base.datadir import DataDir
from app.core.base.websessions import (
    check_session,
    end_session,
    issue_login_code,
    redeem_login_code,
    start_session,
)


def test_a_code_is_redeemed_once(datadir: DataDir) -> None:
    code = issue_login_code(datadir)
    assert redeem_login_code(datadir, code) is True
    assert redeem_login_code(datadir, code) is False


def test_a_wrong_secret_burns_the_code(datadir: DataDir) -> None:
    code = issue_login_code(datadir)
    ident, _, secret = code.partition(".")
    wrong = ident + "." + ("A" if secret[0] != "A" else "B") + secret[1:]
    assert redeem_login_code(datadir, wrong) is False
    assert redeem_login_code(datadir, code) is False  # one guess only, right or wrong


def test_codes_expire_at_the_edge(datadir: DataDir) -> None:
    ttl = datadir.settings["web_login_code_ttl"]
    now = time.time()
    first, second = issue_login_code(datadir, now=now), issue_login_code(datadir, now=now)
    assert redeem_login_code(datadir, first, now=now + ttl - 1) is True
    assert redeem_login_code(datadir, second, now=now + ttl) is False


def test_malformed_codes_are_false(datadir: DataDir) -> None:
    for bad in (None, "", "x", "../../etc.passwd", "0" * 16 + ".short", 42):
        assert redeem_login_code(datadir, bad) is False


def test_sessions_expire_and_end(datadir: DataDir) -> None:
    now = time.time()
    token, session = start_session(datadir, now=now)
    ttl = datadir.settings["web_session_ttl"]
    assert check_session(datadir, token, now=now + ttl - 1) == session
    assert check_session(datadir, token, now=now + ttl) is None
    end_session(datadir, session.id)
    assert check_session(datadir, token, now=now) is None
    record = (datadir.state / "web" / "sessions")
    assert list(record.iterdir()) == []


def test_session_files_are_private_and_hold_no_secret(datadir: DataDir) -> None:
    token, session = start_session(datadir)
    path = datadir.state / "web" / "sessions" / session.id
    assert path.stat().st_mode & 0o777 == 0o600
    assert token.partition(".")[2] not in path.read_text()
    assert (datadir.state / "web").stat().st_mode & 0o777 == 0o700


def test_a_session_bound_to_a_port_is_refused_on_any_other(datadir: DataDir) -> None:
    token, session = start_session(datadir, port=8888)
    assert check_session(datadir, token, port=8888) == session
    assert check_session(datadir, token, port=9999) is None
    assert check_session(datadir, token) is None  # a caller that does not say its port
