"""The engine loop on a testnet account against the local exchange simulator (real ccxt client):
the entry signal of the newest closed bar becomes one exchange order whose fill is booked into
the position and the engine; every simulator fault ends with a clear reason and never stops the
loop for other deployments; a worker killed between "accepted" and "stored" leaves exactly one
order; a fill made while the worker was down is found; an API key never appears in a log line.

Candles are built for the test (an entry of sma_cross(5, 20) on the newest closed bar, at the
simulator's price level) and stored; the simulator executes. Its clock is fixed at NOW, so the
deployments are made active before that instant."""
from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import numpy as np
import pytest

from apps.marketdata import services as md
from apps.marketdata.arrays import CandleArrays
from apps.strategies.services import config_create
from apps.trading import services
from apps.trading.brokers import CcxtBroker
from apps.trading.models import (Deployment, DeploymentState, ExchangeAccount, Fill, Health, Mode, Order, OrderStatus,
                                 Position)
from apps.trading.services.engine import engine_config_for, state_load
from quant.strategies import Bars, get_strategy

from .conftest import API_KEY, API_SECRET, BAR, NOW

HOUR = 3_600_000


def signal_candles(price: float, n: int = 60) -> CandleArrays:
    """A slow decline then a jump on the last bar: sma_cross(5, 20) enters long at its close."""
    close = price * (1 - 0.001 * np.arange(n))
    close[-1] = close[-2] * 1.10
    opens = np.r_[close[0], close[:-1]]
    high, low = np.maximum(opens, close) * 1.001, np.minimum(opens, close) * 0.999
    times = BAR - (n - 1 - np.arange(n, dtype=np.int64)) * HOUR
    candles = CandleArrays(times, opens, high, low, close, np.ones(n), timeframe="1h")
    signals = get_strategy("sma_cross").signals(Bars(times, opens, high, low, close, np.ones(n), "1h"),
                                                {"fast": 5, "slow": 20})
    assert signals.entries_long[-1] and not signals.entries_long[:-1].any()
    return candles


def _activated_before_now(deployment) -> None:
    """On the simulator's clock (fixed at NOW, years ago) the deployment was activated before it."""
    Deployment.objects.filter(pk=deployment.pk).update(
        state_changed_at=datetime.fromtimestamp((NOW - 10 * HOUR) / 1000, tz=UTC))


@pytest.fixture
def live(deployment, btc, sim):
    price = float(sim.candles("BTC/USDT", "1h", limit=1)[-1][4])
    md.candles_ingest(market=btc, timeframe="1h", rows=signal_candles(price), source="test")
    _activated_before_now(deployment)
    return deployment


def tick(deployment):
    return services.deployment_tick_safely(deployment=deployment, now_ms=NOW + 60_000, fetch=False)


def engine(deployment):
    deployment.refresh_from_db()
    return state_load(engine_config_for(deployment), deployment.engine_state)


def test_the_newest_bars_entry_becomes_one_exchange_order_booked_into_books_and_engine(live, sim):
    result = tick(live)
    assert result["bars"] == 1 and not result.get("error"), result
    assert result["reconciliation"]["flagged"] == []  # reconciled at the start of its loop
    order = Order.objects.get(deployment=live)
    assert order.status == OrderStatus.FILLED and order.signal_bar_time == BAR and order.intent_index == 1
    assert order.decision["signals"]["entries_long"] is True and order.verdict["approved"] is True
    assert len(sim.orders()) == 1 and sim.orders()[0]["clientOrderId"] == order.client_order_id
    fill = Fill.objects.get(order=order)
    position = Position.objects.get(deployment=live)
    state = engine(live)
    # the engine holds what can be sold again: the position down to the lot step (0.00001 BTC)
    assert state.side == "long" and 0 <= float(position.amount) - state.size < 0.00001
    assert position.amount == fill.amount - (fill.fee if fill.fee_currency == "BTC" else 0)
    assert state.entry_price == pytest.approx(float(fill.price))
    assert live.snapshots.count() == 1
    # the same bar again acts on nothing new: still one order
    assert tick(live)["bars"] == 0 and len(sim.orders()) == 1


def test_worker_killed_between_order_accepted_and_order_stored_gives_exactly_one_order(live, sim, monkeypatch):
    real = CcxtBroker.place_order

    def accepted_then_killed(self, request):
        real(self, request)  # the exchange has it
        raise SystemExit("worker killed before the answer was stored")

    monkeypatch.setattr(CcxtBroker, "place_order", accepted_then_killed)
    with pytest.raises(SystemExit):
        tick(live)
    assert Order.objects.get(deployment=live).status == OrderStatus.SUBMITTED
    monkeypatch.setattr(CcxtBroker, "place_order", real)
    Deployment.objects.filter(pk=live.pk).update(lock_owner="", lock_expires_at=None)  # the dead worker's lease
    result = tick(live)  # the restart: the same bar, the same intent, the same client order id
    assert not result.get("error"), result
    assert len(sim.orders()) == 1
    order = Order.objects.get(deployment=live)
    assert order.status == OrderStatus.FILLED and order.fills.count() == 1
    assert engine(live).side == "long"


@pytest.fixture
def bystander(alice, binance, btc):
    """Another deployment on a paper account, same market: the loop must reach it whatever fails."""
    account = services.account_create(owner=alice, name="Paper bystander", exchange=binance, mode=Mode.PAPER,
                                      paper_balance=Decimal("10000"), reason="test")
    config = config_create(owner=alice, strategy_key="sma_cross", market=btc, timeframe="1h",
                           parameters={"fast": 5, "slow": 20}, name="bystander")
    d = services.deployment_create(owner=alice, config=config, account=account, capital=Decimal("1000"), reason="t")
    d = services.deployment_activate(deployment=d, reason="go")
    _activated_before_now(d)
    return d


@pytest.mark.parametrize("switch,code", [("reject_next", "invalid_order"),
                                         ("insufficient_balance_next", "insufficient_balance")])
def test_exchange_refusals_are_stored_with_a_reason_and_the_loop_goes_on(live, bystander, sim, switch, code):
    sim.set_faults(**{switch: 1})
    results = services.engine_tick_all(now_ms=NOW + 60_000, fetch=False)
    assert {r["deployment"] for r in results} == {live.pk, bystander.pk}
    order = Order.objects.get(deployment=live)
    assert order.status == OrderStatus.REJECTED and order.reason_code == code and order.reason
    assert sim.orders() == [] and engine(live).side is None  # refused: the engine holds nothing
    live.refresh_from_db()
    assert live.state == DeploymentState.ACTIVE
    assert Order.objects.get(deployment=bystander).status == OrderStatus.OPEN  # paper: fills at the next open


def test_timeout_after_accept_in_the_loop_gives_exactly_one_order(live, sim):
    sim.set_faults(timeout_after_accept_next=1)
    tick(live)
    assert sim.fault_counts["timeout_after_accept"] == 1 and len(sim.orders()) == 1
    assert Order.objects.get(deployment=live).status == OrderStatus.FILLED


def test_partial_fill_books_the_part_that_filled(live, sim):
    sim.set_faults(partial_fill_ratio=0.5)
    tick(live)
    order = Order.objects.get(deployment=live)
    fill = order.fills.get()
    assert fill.amount == pytest.approx(order.amount / 2, rel=Decimal("1e-3"))
    assert order.status == OrderStatus.EXPIRED  # the rest of a market order expires
    state = engine(live)
    assert 0 <= float(Position.objects.get(deployment=live).amount) - state.size < 0.00001


def test_a_refused_key_pauses_shows_on_the_account_and_is_not_retried(live, bystander, sim, caplog):
    sim.set_faults(auth_fail=True)
    services.engine_tick_all(now_ms=NOW + 60_000, fetch=False)
    live.refresh_from_db()
    account = ExchangeAccount.objects.get(pk=live.account_id)
    assert account.health == Health.AUTH_FAILED and account.last_error
    assert live.state == DeploymentState.PAUSED and "API key" in live.state_reason
    signed = len([r for r in sim.requests if "signature" in r.params])
    Deployment.objects.filter(pk=live.pk).update(last_bar_time=None)  # even with a bar to act on again
    result = services.deployment_tick_safely(deployment=live, now_ms=NOW + 60_000, fetch=False)
    assert "refused" in result["error"]
    assert len([r for r in sim.requests if "signature" in r.params]) == signed  # nothing sent
    assert Order.objects.get(deployment=bystander).status == OrderStatus.OPEN
    text = caplog.text + str(result) + account.last_error + live.state_reason
    assert API_KEY not in text and API_SECRET not in text


def test_below_minimum_notional_is_stored_with_the_reason_and_never_sent(alice, config, testnet, btc, sim):
    price = float(sim.candles("BTC/USDT", "1h", limit=1)[-1][4])
    md.candles_ingest(market=btc, timeframe="1h", rows=signal_candles(price), source="test")
    services.account_test_connection(account=testnet)
    d = services.deployment_create(owner=alice, config=config, account=testnet, capital=Decimal("3"), reason="t")
    d = services.deployment_activate(deployment=d, reason="go")
    _activated_before_now(d)
    tick(d)
    order = Order.objects.get(deployment=d)
    assert order.status == OrderStatus.FAILED and order.reason_code == "below_minimum"
    assert "minimum notional" in order.reason and sim.orders() == []


def test_an_unknown_symbol_is_a_clear_reason_on_the_order(live, sim):
    sim.remove_market("BTC/USDT")
    tick(live)
    order = Order.objects.get(deployment=live)
    assert order.status == OrderStatus.REJECTED and order.reason_code == "unknown_symbol"
    live.refresh_from_db()
    assert live.state == DeploymentState.ACTIVE


def test_a_stop_filled_while_the_worker_was_down_closes_the_engines_position(alice, btc, testnet, sim):
    price = float(sim.candles("BTC/USDT", "1h", limit=1)[-1][4])
    md.candles_ingest(market=btc, timeframe="1h", rows=signal_candles(price), source="test")
    services.account_test_connection(account=testnet)
    config = config_create(owner=alice, strategy_key="sma_cross", market=btc, timeframe="1h",
                           parameters={"fast": 5, "slow": 20}, execution={"stop_loss": 0.5, "size_value": 0.5})
    d = services.deployment_create(owner=alice, config=config, account=testnet, capital=Decimal("5000"), reason="t")
    d = services.deployment_activate(deployment=d, reason="go")
    _activated_before_now(d)
    tick(d)
    entry = Order.objects.get(deployment=d, intent_index=1)
    stop = Order.objects.get(deployment=d, parent=entry)
    assert entry.status == OrderStatus.FILLED and stop.status == OrderStatus.OPEN and stop.stop_price
    sim.fill_order(client_order_id=stop.client_order_id)  # the stop triggers while no worker runs
    sim.advance(HOUR)
    Deployment.objects.filter(pk=d.pk).update(last_bar_time=BAR)
    services.deployment_tick_safely(deployment=d, now_ms=NOW + HOUR + 60_000, fetch=False)
    stop.refresh_from_db()
    assert stop.status == OrderStatus.FILLED and stop.fills.count() == 1
    assert engine(d).side is None
    assert Position.objects.get(deployment=d).amount == pytest.approx(Decimal(0), abs=Decimal("0.00001"))
