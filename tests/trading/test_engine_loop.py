"""The engine loop on a paper account, end to end: a deployment activated now trades from the
next closed bar, its orders fill at the next bar's open by the backtest's rules (PaperBroker →
engine core), fills move the position, every tick stores a portfolio snapshot, and a replay of
the same bars gives the same trades. Candles are built for the test and stored like imports."""
from __future__ import annotations

import time
from decimal import Decimal

import numpy as np
import pytest

from apps.alerts.models import Alert
from apps.marketdata import services as md
from apps.marketdata.arrays import CandleArrays
from apps.risk.models import RiskProfile
from apps.risk.services import PROFILE_FIELDS
from apps.strategies.services import config_create
from apps.trading import services
from apps.trading.models import (Deployment, DeploymentState, Fill, Mode, Order, OrderStatus, PortfolioSnapshot,
                                 Position)
from apps.trading.services.engine import engine_config_for, state_load
from apps.trading.services.replay import replay
from quant.strategies import Bars

HOUR = 3_600_000
HISTORY = 300
FUTURE = 200


def walk(n: int, start: int, seed: int = 3) -> CandleArrays:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    opens = np.r_[close[0], close[:-1]] * (1 + rng.normal(0, 0.002, n))
    high = np.maximum(opens, close) * (1 + rng.uniform(0, 0.004, n))
    low = np.minimum(opens, close) * (1 - rng.uniform(0, 0.004, n))
    return CandleArrays(start + np.arange(n, dtype=np.int64) * HOUR, opens, high, low, close, np.ones(n),
                        timeframe="1h")


def part(c: CandleArrays, lo: int, hi: int) -> CandleArrays:
    return CandleArrays(c.time[lo:hi], c.open[lo:hi], c.high[lo:hi], c.low[lo:hi], c.close[lo:hi], c.volume[lo:hi],
                        timeframe="1h")


@pytest.fixture
def setup(alice):
    now = int(time.time() * 1000)
    start = now - now % HOUR - HISTORY * HOUR  # bar HISTORY-1 is the last one closed before now
    candles = walk(HISTORY + FUTURE, start)
    exchange = md.exchange_get_or_create(name="Paper files")
    market = md.market_get_or_create_for_import(exchange=exchange, symbol="PW/USDT", amount_step="0.001",
                                                price_step="0.01")
    md.candles_ingest(market=market, timeframe="1h", rows=part(candles, 0, HISTORY), source="test")
    config = config_create(owner=alice, strategy_key="sma_cross", market=market, timeframe="1h",
                           parameters={"fast": 5, "slow": 20},
                           execution={"fee": 0.001, "slippage": 0.0005, "stop_loss": 0.03, "take_profit": 0.05})
    account = services.account_create(owner=alice, name="Paper", exchange=exchange, mode=Mode.PAPER,
                                      paper_balance=Decimal("10000"), reason="test")
    deployment = services.deployment_create(owner=alice, config=config, account=account, capital=Decimal("5000"),
                                            reason="test")
    # Parity with the replay holds while no risk limit binds: the platform's default limits would
    # resize these all-in entries. How limits act on the loop's orders is tested in tests/risk.
    RiskProfile.objects.filter(target_key="global").update(**{f: None for f in PROFILE_FIELDS})
    return {"candles": candles, "market": market, "deployment": deployment, "start": start}


def tick(deployment, now_ms):
    result = services.deployment_tick_safely(deployment=deployment, now_ms=now_ms, fetch=False)
    assert "error" not in result or not result["error"], result
    return result


def test_paper_deployment_trades_from_activation_through_fills_to_equity(setup):
    candles, market, deployment, start = setup["candles"], setup["market"], setup["deployment"], setup["start"]
    # paused: nothing is visited for entries; activation takes effect at the next closed bar
    services.deployment_activate(deployment=deployment, reason="go")
    first = tick(deployment, start + HISTORY * HOUR + 5_000)
    assert first["bars"] == 1  # only the newest closed bar; older bars are history
    trades = []
    for k in range(HISTORY, HISTORY + FUTURE):
        md.candles_ingest(market=market, timeframe="1h", rows=part(candles, k, k + 1), source="test")
        result = tick(deployment, start + (k + 1) * HOUR + 5_000)
        assert result["bars"] == 1 and not result["stale"]
        trades += result["trades"]
    deployment.refresh_from_db()
    assert deployment.last_bar_time == int(candles.time[-1])
    assert len(trades) >= 3

    # every filled market order filled at the open of the bar after its signal bar, ± slippage
    filled = Order.objects.filter(deployment=deployment, status=OrderStatus.FILLED)
    assert filled.count() >= len(trades)
    index = {int(t): i for i, t in enumerate(candles.time)}
    for order in filled.filter(intent_index__in=(0, 1)):
        fill = order.fills.get()
        bar = index[order.signal_bar_time] + 1
        expected = candles.open[bar] * (1.0005 if order.side == "buy" else 0.9995)
        assert float(fill.price) == pytest.approx(expected, rel=1e-12)
        assert int(fill.time.timestamp() * 1000) == int(candles.time[bar])
        assert order.verdict["approved"] is True and order.decision["kind"] in ("entry", "exit")
        assert fill.fee == pytest.approx(fill.amount * fill.price * Decimal("0.001"), rel=Decimal("1e-9"))
    # stops and targets filled by the engine core became orders of their own with the reason
    engine_exits = filled.filter(intent_index=3)
    assert {o.decision["reason"] for o in engine_exits} <= {"stop_loss", "take_profit"}

    # the books: the position equals the engine's, the equity is cash + position at the last close
    state = state_load(engine_config_for(deployment), deployment.engine_state)
    position = Position.objects.filter(deployment=deployment).first()
    held = position.amount if position else Decimal(0)
    assert float(held) == pytest.approx(state.size, abs=1e-9)
    snapshot = PortfolioSnapshot.objects.filter(deployment=deployment).order_by("-time", "-pk").first()
    assert PortfolioSnapshot.objects.filter(deployment=deployment).count() == FUTURE + 1
    assert float(snapshot.equity) == pytest.approx(state.equity, rel=1e-9)
    assert float(snapshot.equity) == pytest.approx(float(snapshot.cash + held * Decimal(str(float(candles.close[-1])))),
                                                   abs=1e-6)
    assert Fill.objects.filter(order__deployment=deployment).count() == 2 * len(trades) + (1 if state.side else 0)

    # the same bars replayed (flat at the activation bar) give the same trades
    bars = Bars(candles.time, candles.open, candles.high, candles.low, candles.close, candles.volume, "1h")
    replayed = replay(bars, "sma_cross", {"fast": 5, "slow": 20}, engine_config_for(deployment))
    first_bar = int(candles.time[HISTORY - 1])
    expected = [t for t in replayed.trades if t["entry_time"] > first_bar]
    assert [(t["entry_time"], t["exit_time"], t["exit_reason"]) for t in trades] == \
        [(t["entry_time"], t["exit_time"], t["exit_reason"]) for t in expected[:len(trades)]]

    # tracking error: paper against a replay of the same period is exact (no slippage, no miss)
    tracking = services.deployment_tracking_error(deployment)
    assert tracking["period"] == {"start": first_bar, "end": int(candles.time[-1])}
    assert tracking["replay_trades"] == tracking["live_trades"] == tracking["matched"] == len(trades)
    assert tracking["missed"] == [] and tracking["extra"] == []
    assert tracking["entry_slippage"]["worst"] == pytest.approx(0, abs=1e-12)
    assert tracking["exit_slippage"]["worst"] == pytest.approx(0, abs=1e-12)
    assert tracking["pnl"]["live"] == pytest.approx(sum(t["pnl"] for t in trades), rel=1e-9)
    assert tracking["pnl"]["difference"] == pytest.approx(0, abs=1e-6)


def test_paused_deployment_takes_no_entries_and_activation_needs_no_restart(setup):
    candles, market, deployment, start = setup["candles"], setup["market"], setup["deployment"], setup["start"]
    for k in range(HISTORY, HISTORY + 60):
        md.candles_ingest(market=market, timeframe="1h", rows=part(candles, k, k + 1), source="test")
        services.engine_tick_all(now_ms=start + (k + 1) * HOUR + 5_000, fetch=False)
    assert not Order.objects.filter(deployment=deployment).exclude(status=OrderStatus.FAILED).exists()
    services.deployment_activate(deployment=deployment, reason="go")
    for k in range(HISTORY + 60, HISTORY + FUTURE):
        md.candles_ingest(market=market, timeframe="1h", rows=part(candles, k, k + 1), source="test")
        services.engine_tick_all(now_ms=start + (k + 1) * HOUR + 5_000, fetch=False)
    assert Order.objects.filter(deployment=deployment, status=OrderStatus.FILLED).exists()


def test_tracking_error_counts_the_trades_a_pause_missed(setup):
    candles, market, deployment, start = setup["candles"], setup["market"], setup["deployment"], setup["start"]
    services.deployment_activate(deployment=deployment, reason="go")
    tick(deployment, start + HISTORY * HOUR + 5_000)
    for k in range(HISTORY, HISTORY + FUTURE):
        if k == HISTORY + 40:
            services.deployment_pause(deployment=deployment, reason="a pause the replay does not have")
        if k == HISTORY + 140:
            services.deployment_activate(deployment=deployment, reason="back")
        md.candles_ingest(market=market, timeframe="1h", rows=part(candles, k, k + 1), source="test")
        tick(deployment, start + (k + 1) * HOUR + 5_000)
    tracking = services.deployment_tracking_error(deployment)
    assert len(tracking["missed"]) >= 1
    assert tracking["matched"] + len(tracking["missed"]) == tracking["replay_trades"]
    assert tracking["live_trades"] == tracking["matched"] + len(tracking["extra"])
    missed_pnl = sum(t["pnl"] for t in tracking["missed"])
    assert tracking["pnl"]["difference"] == pytest.approx(
        sum(p["pnl_live"] - p["pnl_replay"] for p in tracking["pairs"]) - missed_pnl
        + sum(t["pnl"] for t in tracking["extra"]), abs=1e-6)


def test_stale_data_means_no_entries_an_alert_and_a_flag(setup):
    candles, market, deployment, start = setup["candles"], setup["market"], setup["deployment"], setup["start"]
    services.deployment_activate(deployment=deployment, reason="go")
    result = tick(deployment, start + (HISTORY + 2) * HOUR + 5_000)  # two bars later, none stored
    assert result["stale"]
    deployment.refresh_from_db()
    assert deployment.data_stale and "late by more than a bar" in deployment.data_stale_reason
    alert = Alert.objects.get(source="trading", key=f"stale-data:deployment-{deployment.pk}")
    assert alert.severity == "warning" and alert.resolved_at is None and "late by more than a bar" in alert.message
    assert not Order.objects.filter(deployment=deployment).exclude(status=OrderStatus.FAILED).exists()
    md.candles_ingest(market=market, timeframe="1h", rows=part(candles, HISTORY, HISTORY + 2), source="test")
    result = tick(deployment, start + (HISTORY + 2) * HOUR + 6_000)
    deployment.refresh_from_db()
    assert not result["stale"] and not deployment.data_stale and result["bars"] == 2
    alert.refresh_from_db()
    assert alert.resolved_at is not None  # fresh data resolves it


def test_stop_with_close_policy_exits_at_the_next_open(setup):
    candles, market, deployment, start = setup["candles"], setup["market"], setup["deployment"], setup["start"]
    services.deployment_activate(deployment=deployment, reason="go")
    k = HISTORY
    tick(deployment, start + k * HOUR + 5_000)
    while not Position.objects.filter(deployment=deployment, amount__gt=0).exists():
        md.candles_ingest(market=market, timeframe="1h", rows=part(candles, k, k + 1), source="test")
        tick(deployment, start + (k + 1) * HOUR + 5_000)
        k += 1
        assert k < HISTORY + FUTURE - 3
    services.deployment_stop(deployment=deployment, reason="done", exit_policy="close")
    services.engine_tick_all(now_ms=start + k * HOUR + 6_000, fetch=False)  # stopped: visited at once
    close = Order.objects.get(deployment=deployment, intent_index=4)
    assert close.side == "sell" and close.status == OrderStatus.OPEN
    md.candles_ingest(market=market, timeframe="1h", rows=part(candles, k, k + 1), source="test")
    services.engine_tick_all(now_ms=start + (k + 1) * HOUR + 5_000, fetch=False)
    close.refresh_from_db()
    deployment.refresh_from_db()
    assert close.status == OrderStatus.FILLED
    assert float(close.fills.get().price) == pytest.approx(candles.open[k] * 0.9995, rel=1e-12)
    assert Position.objects.get(deployment=deployment).amount == 0
    assert deployment.exit_applied_at is not None and deployment.state == DeploymentState.STOPPED
    assert services.deployments_due(start + (k + 5) * HOUR) == []
