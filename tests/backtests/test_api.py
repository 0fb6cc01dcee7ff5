"""Backtest API: create, list, detail, trades, equity, prices, compare, CSV, cancel, save as config."""
from __future__ import annotations

import csv
import io

import pytest

from apps.backtests.models import BacktestRun
from tests.permission_suite import check_private_to_owner

from .conftest import MIN, T0, ms_dt

BODY = {"strategy_key": "sma_cross", "parameters": {"fast": 10, "slow": 30}, "timeframe": "1m",
        "start": ms_dt(T0).isoformat(), "end": ms_dt(T0 + 1000 * MIN).isoformat(), "fee": 0.001, "stop_loss": 0.02}


@pytest.fixture
def post(api, market, django_capture_on_commit_callbacks):
    def do(user, **overrides):
        with django_capture_on_commit_callbacks(execute=True):
            return api(user).post("/api/v1/backtests/", {**BODY, "market": market.pk, **overrides}, format="json")

    return do


def test_create_runs_and_returns_results(post, api, alice):
    response = post(alice)
    assert response.status_code == 201, response.json()
    run_id = response.json()["id"]
    detail = api(alice).get(f"/api/v1/backtests/{run_id}/").json()
    assert detail["state"] == "succeeded" and detail["metrics"]["trade_count"] > 0
    trades = api(alice).get(f"/api/v1/backtests/{run_id}/trades/").json()
    assert trades["count"] == detail["metrics"]["trade_count"]
    assert set(trades["results"][0]) >= {"entry_time", "exit_time", "entry_price", "exit_price", "size", "fees", "pnl",
                                         "return_pct", "exit_reason"}
    equity = api(alice).get(f"/api/v1/backtests/{run_id}/equity/?max_points=100").json()
    assert equity["bars"] == 1000 and equity["points"] <= 100 and equity["equity"][-1] == pytest.approx(
        detail["final_equity"], rel=1e-6)
    assert min(equity["drawdown"]) == pytest.approx(-detail["metrics"]["max_drawdown"], rel=1e-3)
    prices = api(alice).get(f"/api/v1/backtests/{run_id}/prices/").json()
    assert prices["timeframe"] == "1m" and len(prices["close"]) == 1000 and len(prices["trades"]) == trades["count"]


def test_bad_parameters_answer_400_naming_the_field(post, alice):
    response = post(alice, parameters={"fast": 50, "slow": 20})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["message"].startswith("parameters:") and "fast" in error["message"]
    assert not BacktestRun.objects.exists()


def test_market_you_may_not_see_is_rejected(post, alice, market):
    response = post(alice, market=999999)
    assert response.status_code == 400 and "market" in response.json()["error"]["message"]


def test_runs_are_private_to_their_owner(post, api, alice, bob, charlie, olivia):
    run = BacktestRun.objects.get(pk=post(alice).json()["id"])
    check_private_to_owner(api, list_url="/api/v1/backtests/", obj=run, owner=alice, colleague=bob,
                           outsider=charlie, operator=olivia)
    assert api(charlie).get(f"/api/v1/backtests/{run.pk}/trades/").status_code == 404
    assert api(charlie).get(f"/api/v1/backtests/{run.pk}/export/").status_code == 404


def test_compare_ranks_runs_and_refuses_unseen_ids(post, api, alice, charlie):
    a = post(alice).json()["id"]
    b = post(alice, parameters={"fast": 5, "slow": 60}).json()["id"]
    c = post(charlie).json()["id"]
    data = api(alice).get(f"/api/v1/backtests/compare/?ids={a},{b}&rank_by=total_return").json()
    returns = [row["metrics"]["total_return"] for row in data["runs"]]
    assert returns == sorted(returns, reverse=True) and [r["rank"] for r in data["runs"]] == [1, 2]
    assert all(len(row["equity"]["equity"]) > 0 for row in data["runs"])
    assert api(alice).get(f"/api/v1/backtests/compare/?ids={a},{c}").status_code == 404
    assert api(alice).get(f"/api/v1/backtests/compare/?ids={a}").status_code == 400
    assert api(alice).get(f"/api/v1/backtests/compare/?ids={a},{b}&rank_by=luck").status_code == 400


def test_csv_exports_of_trades_and_metrics(post, api, alice):
    run_id = post(alice).json()["id"]
    run = BacktestRun.objects.get(pk=run_id)
    trades = list(csv.DictReader(io.StringIO(b"".join(api(alice).get(f"/api/v1/backtests/{run_id}/export/").streaming_content).decode())))
    assert len(trades) == run.trades.count()
    assert float(trades[0]["pnl"]) == pytest.approx(run.trades.get(number=1).pnl)
    export = api(alice).get(f"/api/v1/backtests/{run_id}/export/?what=metrics")
    metrics = dict(csv.reader(io.StringIO(b"".join(export.streaming_content).decode())))
    assert float(metrics["final_equity"]) == pytest.approx(run.final_equity)
    assert int(metrics["trade_count"]) == run.metrics["trade_count"]


def test_save_as_config_through_the_api(post, api, alice):
    run_id = post(alice).json()["id"]
    response = api(alice).post(f"/api/v1/backtests/{run_id}/save-as-config/", {"name": "keeper"}, format="json")
    assert response.status_code == 201
    body = response.json()
    assert body["name"] == "keeper" and body["provenance"] == {"backtest_run": run_id} and body["stage"] == "discovery"
    assert api(alice).get(f"/api/v1/strategy-configs/{body['id']}/").status_code == 200


def test_list_query_budget(market, api, alice, django_assert_max_num_queries):
    """Enough finished runs (25) that one query per row would blow the budget."""
    from apps.backtests import services

    for i in range(25):
        run = services.backtest_create(owner=alice, market=market, timeframe="1m", start=ms_dt(T0),
                                       end=ms_dt(T0 + 200 * MIN), strategy_key="sma_cross",
                                       parameters={"fast": 5 + i % 5, "slow": 30}, enqueue=False)
        services.backtest_execute(run.pk)
    client = api(alice)
    with django_assert_max_num_queries(10):
        body = client.get("/api/v1/backtests/").json()
    assert body["count"] == 25 and len(body["results"]) == 25
    assert all(r["state"] == "succeeded" and r["warnings"] for r in body["results"])


def test_operator_admin_lists_runs_and_configs(post, api, client, alice, olivia):
    run_id = post(alice).json()["id"]
    api(alice).post(f"/api/v1/backtests/{run_id}/save-as-config/", {"name": "admin-visible"}, format="json")
    client.force_login(olivia)
    runs_page = client.get("/admin/backtests/backtestrun/")
    assert runs_page.status_code == 200 and f">{run_id}<" in runs_page.content.decode()
    assert '<progress value="100' in runs_page.content.decode()
    assert "admin-visible" in client.get("/admin/strategies/strategyconfig/").content.decode()
    assert client.get(f"/admin/backtests/backtestrun/{run_id}/change/").status_code == 200
    assert client.get("/admin/backtests/backtestrun/add/").status_code == 403
