"""Bad input is a 400 naming the problem, never a 500, and answers do not leak (issue 9, findings 7, 8)."""
from __future__ import annotations

import csv
import io

import pytest

from apps.audit.services import audit_record
from apps.backtests import services as backtests
from apps.backtests.models import BacktestTrade
from tradepulse.core.csvexport import safe_cell
from tests.backtests.conftest import MIN, T0, market, ms_dt  # noqa: F401
from tests.marketdata.conftest import binance, btc, sim  # noqa: F401


@pytest.fixture
def run(market, alice):  # noqa: F811
    run = backtests.backtest_create(owner=alice, market=market, timeframe="1m", start=ms_dt(T0),
                                    end=ms_dt(T0 + 1000 * MIN), strategy_key="sma_cross",
                                    parameters={"fast": 10, "slow": 30}, enqueue=False)
    backtests.backtest_execute(run.pk)
    run.refresh_from_db()
    return run


@pytest.mark.parametrize("query", ["max_points=null", "max_points=true", "max_points=1e999", "max_points=5"])
def test_bad_query_parameters_are_a_400_naming_the_parameter(api, alice, run, query):
    response = api(alice).get(f"/api/v1/backtests/{run.pk}/equity/?{query}")
    assert response.status_code == 400
    assert response.json()["error"]["message"].startswith("max_points:")


def test_an_offset_the_database_cannot_store_is_a_400(api, olivia):
    response = api(olivia).get("/api/v1/audit-events/?until=3315-02-11T06:29:06.51%2B22:08")
    assert response.status_code == 400 and "until" in response.json()["error"]["message"]
    response = api(olivia).get("/api/v1/audit-events/?until=2026-02-11T06:29:06%2B15:30")
    assert response.status_code == 200


@pytest.mark.parametrize("start,end", [(-10 ** 18, 1_700_000_000_000), (1_600_000_000_000, 10 ** 18)])
def test_download_times_out_of_any_range_are_a_400(api, alice, btc, start, end):  # noqa: F811
    response = api(alice).post("/api/v1/download-jobs/", {"market": btc.pk, "timeframe": "1h", "start": start,
                                                           "end": end}, format="json")
    assert response.status_code == 400
    assert "outside the accepted range" in response.json()["error"]["message"]


def test_filters_answer_the_same_for_another_users_id_and_a_missing_one(api, alice, bob, market):  # noqa: F811
    theirs = backtests.backtest_save_as_config(run=_run_of(bob, market), owner=bob)
    client = api(alice)
    other = client.get(f"/api/v1/backtests/?config={theirs.pk}")
    missing = client.get("/api/v1/backtests/?config=999999999")
    assert other.status_code == missing.status_code == 400
    assert other.json()["error"]["message"] == missing.json()["error"]["message"].replace("999999999", str(theirs.pk))


def _run_of(user, market):  # noqa: F811
    run = backtests.backtest_create(owner=user, market=market, timeframe="1m", start=ms_dt(T0),
                                    end=ms_dt(T0 + 1000 * MIN), strategy_key="sma_cross",
                                    parameters={"fast": 10, "slow": 30}, enqueue=False)
    backtests.backtest_execute(run.pk)
    run.refresh_from_db()
    return run


def test_security_page_with_an_unknown_device_says_so(client, alice):
    client.force_login(alice)
    for device in ("abc", "99999999", "1" * 40):
        response = client.post("/account/security/", {"action": "confirm", "device": device, "code": "123456"})
        assert response.status_code == 200
        assert "That enrolment is no longer open" in response.content.decode()


def test_me_documents_an_empty_email(api, db):
    from tests.conftest import make_user

    user = make_user("noemail", "Trader")
    user.email = ""
    user.save()
    assert api(user).get("/api/v1/me/").json()["email"] == ""


def test_audit_csv_cells_cannot_be_formulas(api, olivia, alice):
    for reason in ("=HYPERLINK(\"http://evil\")", "+1+1", "-2", "@SUM(A1)", "\tx", "plain"):
        audit_record("tests.csv", target=alice, reason=reason)
    response = api(olivia).get("/api/v1/audit-events/export/?action=tests.csv")
    table = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert sorted(r["reason"] for r in table) == sorted(
        ["'=HYPERLINK(\"http://evil\")", "'+1+1", "'-2", "'@SUM(A1)", "'\tx", "plain"])


def test_trade_export_is_streamed_and_keeps_numbers(api, alice, run):
    response = api(alice).get(f"/api/v1/backtests/{run.pk}/export/")
    assert response.streaming and response["Content-Type"] == "text/csv"
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert len(rows) == BacktestTrade.objects.filter(run=run).count() > 0
    assert all(float(r["pnl"]) == pytest.approx(t.pnl) for r, t in zip(rows, run.trades.order_by("number")))
    assert safe_cell(-12.5) == -12.5 and safe_cell("-12.5") == "'-12.5"  # numbers stay numbers; text is escaped
