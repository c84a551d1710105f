""""Birthday today" is the viewer's today: the API takes ``today`` or ``tz``, the CLI its zone."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner

from app.cli import main
from tests.helpers.clients import AdminClient, assert_error, make_admin_client

PW = "pw-birthday-long-enough"


def _node(root: Path, birthdate: str) -> AdminClient:
    client = make_admin_client(root)
    fp = client.post("/identities", json={"password": PW}).json["fingerprint"]
    r = client.post("/posts", json={"fingerprint": fp, "password": PW,
                                    "profile": {"name": "Basant", "birthdate": birthdate}})
    assert r.status_code == 201, r.json
    return client


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> AdminClient:
    return _node(tmp_path_factory.mktemp("bd"), "1990-06-15")


def _days(client: AdminClient, **query: str) -> dict[str, Any]:
    r = client.get("/birthdays", query_string=query)
    assert r.status_code == 200, r.json
    return r.json


def test_the_viewers_date_decides_today(node: AdminClient) -> None:
    assert _days(node, today="2026-06-15")["birthdays"][0]["days_until"] == 0
    assert _days(node, today="2026-06-16")["birthdays"][0]["days_until"] == 364
    assert _days(node, today="2026-06-14")["birthdays"][0]["days_until"] == 1


def test_the_viewers_time_zone_decides_today(node: AdminClient) -> None:
    """UTC+14 and UTC-11 are never on the same date: the answers differ accordingly."""
    got = {}
    for tz in ("Pacific/Kiritimati", "Pacific/Pago_Pago"):
        before = dt.datetime.now(ZoneInfo(tz)).date()
        answer = _days(node, tz=tz)
        after = dt.datetime.now(ZoneInfo(tz)).date()
        assert answer["today"] in (before.isoformat(), after.isoformat())
        got[tz] = answer
    east, west = (dt.date.fromisoformat(got[z]["today"]) for z in got)
    assert east > west
    first = [b["days_until"] for b in got["Pacific/Kiritimati"]["birthdays"]]
    second = [b["days_until"] for b in got["Pacific/Pago_Pago"]["birthdays"]]
    assert first != second


def test_feb_29_for_the_viewer(tmp_path: Path) -> None:
    client = _node(tmp_path / "leap", "2000-02-29")
    common = _days(client, today="2027-02-28")["birthdays"][0]
    assert (common["next"], common["days_until"]) == ("2027-02-28", 0)
    leap = _days(client, today="2028-02-28")["birthdays"][0]
    assert (leap["next"], leap["days_until"]) == ("2028-02-29", 1)


@pytest.mark.parametrize(("query", "field"), [
    ({"today": "2026-02-30"}, "today"), ({"today": "tomorrow"}, "today"),
    ({"tz": "Mars/Olympus"}, "tz"), ({"tz": "../../etc/passwd"}, "tz"),
    ({"today": "2026-01-01", "tz": "UTC"}, "tz")])
def test_bad_dates_and_zones_are_400(node: AdminClient, query: dict[str, str],
                                     field: str) -> None:
    assert_error(node.get("/birthdays", query_string=query), 400, field)


def test_the_cli_counts_from_its_own_zone(node: AdminClient) -> None:
    runner = CliRunner()
    args = ["--data-dir", str(node.dd.root), "--json", "birthdays"]
    for tz in ("Pacific/Kiritimati", "Pacific/Pago_Pago"):
        result = runner.invoke(main, [*args, "--tz", tz], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        assert '"today": "' + dt.datetime.now(ZoneInfo(tz)).date().isoformat() in result.output
    fixed = runner.invoke(main, [*args, "--today", "2026-06-15"], catch_exceptions=False)
    assert '"days_until": 0' in fixed.output
