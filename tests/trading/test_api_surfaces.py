"""Trading API reads for the dashboard and integrations: portfolio history (downsampled, validated),
per-config performance (closed trades, win rate, PnL, live against backtest), a deployment's
performance with its notices, filters, scoping and query budgets over enough rows."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from apps.audit.models import AuditEvent
from apps.risk.models import RiskProfile
from apps.strategies.models import ConfigEvidence
from apps.trading.models import OrderStatus, PortfolioSnapshot

from .surfaces import T0, EngineRun, book_trade, clear_risk_limits, engine_tick, make_deployment, snapshot, traded  # noqa: F401  (fixture)

pytestmark = pytest.mark.django_db


def D(x) -> Decimal:
    return Decimal(str(x))


def test_performance_per_config_counts_closed_trades_win_rate_and_pnl(api, alice, traded):
    rows = api(alice).get("/api/v1/trading/performance/").json()
    assert len(rows) == 1
    row = rows[0]
    assert row["config"] == traded.config_id and row["symbol"] == "SYN/USD" and row["quote"] == "USD"
    assert row["trades"] == 2 and row["wins"] == 1 and row["win_rate"] == 0.5
    assert D(row["closed_trades_pnl"]) == D("14.38")
    assert D(row["realised_pnl"]) == D("14.38") and D(row["unrealised_pnl"]) == D("8.7")
    assert D(row["fees"]) == D("0.92")
    assert D(row["equity"]) == D("1023.08") and row["live_return"] == pytest.approx(0.02308)
    assert row["backtest"] is None  # the config has no backtest evidence: nothing to compare, not a zero
    assert row["modes"] == ["paper"] and row["active"] == 1


def test_performance_puts_the_backtest_evidence_beside_live(api, alice, traded):
    ConfigEvidence.objects.create(config=traded.config, source="backtest", period_start=T0 - timedelta(days=30),
                                  period_end=T0, trades=41, total_return=0.12, sharpe=1.4, max_drawdown=0.08,
                                  metrics={"win_rate": 0.55})
    row = api(alice).get(f"/api/v1/trading/performance/?config={traded.config_id}").json()[0]
    assert row["backtest"]["trades"] == 41 and row["backtest"]["win_rate"] == 0.55
    assert row["backtest"]["total_return"] == 0.12


def test_performance_is_scoped_and_filters_are_validated(api, alice, charlie, traded):
    assert api(charlie).get("/api/v1/trading/performance/").json() == []
    # alice's config id is not charlie's to ask about: rejected like an unknown id
    response = api(charlie).get(f"/api/v1/trading/performance/?config={traded.config_id}")
    assert response.status_code == 400 and "config" in response.json()["error"]["message"]
    assert api(alice).get("/api/v1/trading/performance/?mode=live").json() == []
    assert api(alice).get("/api/v1/trading/performance/?mode=moon").status_code == 400


def test_portfolio_history_is_the_deployments_equity(api, alice, traded):
    data = api(alice).get(f"/api/v1/trading/portfolio/history/?deployment={traded.pk}").json()
    assert data["equity"] == [1019.58, 1014.38, 1023.08]
    assert data["time"][0] == int((T0 + timedelta(minutes=6)).timestamp() * 1000)
    assert data["points"] == 3 and data["snapshots"] == 3 and data["quote"] == "USD"


def test_portfolio_history_sums_deployments_carrying_each_ones_last_equity(api, alice, traded):
    other = make_deployment(alice, name="second", capital="500")
    snapshot(other, price="100", at=T0 + timedelta(minutes=10))  # flat: equity = capital 500
    data = api(alice).get("/api/v1/trading/portfolio/history/").json()
    # 6 min: first only; 10 min: first's 1019.58 carried + 500; then both
    assert data["equity"] == [1019.58, 1519.58, 1514.38, 1523.08]
    assert data["deployments"] == 2
    only = api(alice).get(f"/api/v1/trading/portfolio/history/?account={other.account_id}").json()
    assert only["equity"] == [500.0]


def test_portfolio_history_downsamples_keeping_peak_and_trough(api, alice):
    d = make_deployment(alice)
    rows = [PortfolioSnapshot(deployment=d, account=d.account, time=T0 + timedelta(minutes=i), cash=D(1000),
                              positions_value=D(0), equity=D(1000 + (i % 50))) for i in range(600)]
    rows[333].equity = D("2500")  # a peak
    rows[444].equity = D("400")   # a trough
    PortfolioSnapshot.objects.bulk_create(rows)
    data = api(alice).get(f"/api/v1/trading/portfolio/history/?deployment={d.pk}&max_points=60").json()
    assert data["snapshots"] == 600 and data["points"] <= 62
    assert 2500.0 in data["equity"] and 400.0 in data["equity"]
    assert data["time"] == sorted(data["time"])


@pytest.mark.parametrize("query, field", [("max_points=5", "max_points"), ("max_points=abc", "max_points"),
                                          ("max_points=20001", "max_points"), ("deployment=abc", "deployment"),
                                          ("start=2024-01-02T00:00:00Z&end=2024-01-01T00:00:00Z", "end"),
                                          ("start=yesterday", "start")])
def test_portfolio_history_rejects_bad_parameters_naming_them(api, alice, query, field):
    response = api(alice).get(f"/api/v1/trading/portfolio/history/?{query}")
    assert response.status_code == 400
    assert field in response.json()["error"]["message"]


def test_portfolio_history_of_someone_elses_deployment_is_refused(api, charlie, traded):
    response = api(charlie).get(f"/api/v1/trading/portfolio/history/?deployment={traded.pk}")
    assert response.status_code == 400 and "deployment" in response.json()["error"]["message"]
    assert api(charlie).get("/api/v1/trading/portfolio/history/").json()["equity"] == []


def test_deployment_performance_says_what_to_know(api, alice, charlie, traded):
    RiskProfile.objects.update_or_create(target_key="global", defaults={"scope": "global",
                                                                        "position_notional_max": Decimal("50000")})
    data = api(alice).get(f"/api/v1/trading/deployments/{traded.pk}/performance/").json()
    assert data["trades"] == 2 and D(data["equity"]) == D("1023.08")
    codes = {n["code"]: n for n in data["notices"]}
    assert "stale_data" not in codes  # the engine has not judged its data yet
    assert "no_risk_limits" not in codes  # a global limit is configured
    clear_risk_limits()
    notices = api(alice).get(f"/api/v1/trading/deployments/{traded.pk}/performance/").json()["notices"]
    assert [n["code"] for n in notices] == ["no_risk_limits"]
    assert data["tracking_error"] is None
    assert api(charlie).get(f"/api/v1/trading/deployments/{traded.pk}/performance/").status_code == 404


def test_deployment_performance_carries_the_engines_stale_data_flag(api, alice):
    d = make_deployment(alice, name="stale")
    engine_tick(d)  # now: the file market's candles end in 2023
    notices = api(alice).get(f"/api/v1/trading/deployments/{d.pk}/performance/").json()["notices"]
    stale = [n for n in notices if n["code"] == "stale_data"]
    assert len(stale) == 1 and "late by more than a bar" in stale[0]["message"]
    assert "SYN/USD" in stale[0]["message"]


def test_orders_show_the_signal_bar_decision_and_verdict(api, alice, traded):
    rows = api(alice).get(f"/api/v1/trading/orders/?deployment={traded.pk}").json()["results"]
    assert len(rows) == 5
    first = rows[-1]
    assert first["signal_bar_at"] == "2023-11-14T21:59:00Z"
    assert first["decision"]["signal"] == "entry_long"
    assert first["verdict"]["outcome"] == "approved" and first["verdict"]["amount"] == "2"


def test_order_fill_and_position_filters(api, alice, traded):
    book_trade(traded, side="sell", amount="3", price="103", at=T0 + timedelta(minutes=30), status=OrderStatus.OPEN)
    client = api(alice)
    assert [o["status"] for o in client.get("/api/v1/trading/orders/?open=true").json()["results"]] == ["open"]
    assert len(client.get("/api/v1/trading/orders/?open=false").json()["results"]) == 5
    after = (T0 + timedelta(minutes=12)).isoformat()
    fills = client.get("/api/v1/trading/fills/", {"deployment": traded.pk, "after": after}).json()["results"]
    assert [(f["side"], f["price"]) for f in fills] == [("buy", "101.000000000000"), ("sell", "100.000000000000")]
    assert fills[0]["deployment"] == traded.pk and fills[0]["symbol"] == "SYN/USD"
    positions = client.get("/api/v1/trading/positions/?open=true").json()["results"]
    assert len(positions) == 1 and D(positions[0]["amount"]) == D(3)


def test_list_endpoints_keep_a_query_budget_over_many_rows(api, alice, django_assert_max_num_queries):
    deployments = [make_deployment(alice, name=f"d{i}") for i in range(3)]
    for i in range(30):
        d = deployments[i % 3]
        book_trade(d, side="buy" if i % 2 == 0 else "sell", amount="1", price=str(100 + i),
                   at=T0 + timedelta(minutes=i))
        snapshot(d, price=str(100 + i), at=T0 + timedelta(minutes=i, seconds=30))
    client = api(alice)
    for url, rows in (("/api/v1/trading/orders/", 30), ("/api/v1/trading/fills/", 30),
                      ("/api/v1/trading/portfolio/", 30), ("/api/v1/trading/deployments/", 3)):
        with django_assert_max_num_queries(10):
            assert len(client.get(url).json()["results"]) == rows, url
    with django_assert_max_num_queries(12):
        assert len(client.get("/api/v1/trading/performance/").json()) == 3
    with django_assert_max_num_queries(10):
        assert client.get("/api/v1/trading/portfolio/history/").json()["snapshots"] == 30
    with django_assert_max_num_queries(10):
        assert len(client.get("/api/v1/trading/positions/").json()["results"]) == 3


# --- manual actions through the API (the engine's own services) -----------------------------------
@pytest.fixture
def holding(alice):
    run = EngineRun(alice)
    run.first_tick()
    position = run.until_open_position()
    return run, position


def test_close_a_position_with_a_reason_then_it_fills_at_the_next_open(api, alice, holding):
    run, position = holding
    client = api(alice)
    refused = client.post(f"/api/v1/trading/positions/{position.pk}/close/", {}, format="json")
    assert refused.status_code == 400 and "reason" in refused.json()["error"]["message"]
    response = client.post(f"/api/v1/trading/positions/{position.pk}/close/", {"reason": "taking profit by hand"},
                           format="json")
    assert response.status_code == 200, response.json()
    order = response.json()["order"]
    assert order["side"] == "sell" and order["status"] == "open" and order["decision"]["by"] == "manual"
    assert order["decision"]["actor"] == "alice" and order["verdict"]["approved"] is True
    run.step()  # paper: the next bar's open fills it
    position.refresh_from_db()
    assert position.amount == 0 and position.side == "flat"
    assert AuditEvent.objects.filter(action="trading.position.close_requested", reason="taking profit by hand").exists()


def test_flatten_pauses_and_closes(api, alice, holding):
    run, position = holding
    response = api(alice).post(f"/api/v1/trading/deployments/{run.deployment.pk}/flatten/",
                               {"reason": "news event"}, format="json")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["paused"] is True and body["close_order"]
    run.deployment.refresh_from_db()
    assert run.deployment.state == "paused" and "news event" in run.deployment.state_reason
    run.step()
    position.refresh_from_db()
    assert position.amount == 0


def test_manual_actions_are_scoped(api, alice, bob, charlie, olivia, holding):
    from guardian.shortcuts import assign_perm

    run, position = holding
    body = {"reason": "x"}
    assert api(charlie).post(f"/api/v1/trading/positions/{position.pk}/close/", body,
                             format="json").status_code == 404
    assert api(charlie).post(f"/api/v1/trading/deployments/{run.deployment.pk}/flatten/", body,
                             format="json").status_code == 404
    assign_perm("trading.view_deployment", bob, run.deployment)
    assert api(bob).post(f"/api/v1/trading/positions/{position.pk}/close/", body, format="json").status_code == 403
    assert api(bob).post(f"/api/v1/trading/deployments/{run.deployment.pk}/pause/", body,
                         format="json").status_code == 403
    # an operator operates anyone's deployment (pause, close) but does not start it trading
    assert api(olivia).post(f"/api/v1/trading/deployments/{run.deployment.pk}/pause/", body,
                            format="json").status_code == 200
    assert api(olivia).post(f"/api/v1/trading/deployments/{run.deployment.pk}/activate/", body,
                            format="json").status_code == 403
    response = api(olivia).post(f"/api/v1/trading/positions/{position.pk}/close/", {"reason": "risk desk"},
                                format="json")
    assert response.status_code == 200 and response.json()["order"]["decision"]["actor"] == "olivia"


def test_paper_trades_track_their_replay(api, alice, holding):
    run, position = holding
    while not api(alice).get(f"/api/v1/trading/deployments/{run.deployment.pk}/performance/").json()["trades"]:
        run.step()
    data = api(alice).get(f"/api/v1/trading/deployments/{run.deployment.pk}/performance/").json()
    te = data["tracking_error"]
    # paper fills by the backtest's own rules: live and replay are the same trades
    assert te["live_trades"] == te["replay_trades"] == te["matched"] == data["trades"] == 1
    assert te["missed"] == [] and te["extra"] == []
    assert te["pnl"]["difference"] == pytest.approx(0, abs=1e-6)
    assert float(data["closed_trades_pnl"]) == pytest.approx(te["pnl"]["live"], abs=1e-6)
    curves = data["closed_trade_curves"]
    assert curves["live"]["equity"][0] == curves["replay"]["equity"][0] == 5000.0  # the capital, at the first bar
    assert curves["live"]["equity"][-1] == pytest.approx(5000 + te["pnl"]["live"], abs=1e-6)
    assert curves["live"]["equity"][-1] == pytest.approx(curves["replay"]["equity"][-1], abs=1e-6)
    assert curves["live"]["time"][1] == te["pairs"][0]["exit_live"]
