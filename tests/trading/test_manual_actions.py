"""Manual actions by permitted users: close a position, flatten a deployment, cancel an order.
They pass the same pre-trade check and broker as the engine's orders, are audited with the
person's reason, and paper orders fill the way every paper order does (next bar's open)."""
from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from apps.audit.models import AuditEvent
from apps.marketdata import services as md
from apps.trading import services
from apps.trading.models import DeploymentState, Order, OrderStatus, Position

from .test_engine_loop import HISTORY, HOUR, part, setup, tick  # noqa: F401 - `setup` is a fixture
from .test_live_loop import live  # noqa: F401 - fixture


def _until_long(setup):
    candles, market, deployment, start = setup["candles"], setup["market"], setup["deployment"], setup["start"]
    services.deployment_activate(deployment=deployment, reason="go")
    k = HISTORY
    tick(deployment, start + k * HOUR + 5_000)
    while not Position.objects.filter(deployment=deployment, amount__gt=0).exists():
        md.candles_ingest(market=market, timeframe="1h", rows=part(candles, k, k + 1), source="test")
        tick(deployment, start + (k + 1) * HOUR + 5_000)
        k += 1
    return k


def test_closing_a_paper_position_fills_at_the_next_open_and_is_audited(setup, alice):
    candles, market, deployment, start = setup["candles"], setup["market"], setup["deployment"], setup["start"]
    k = _until_long(setup)
    position = Position.objects.get(deployment=deployment)
    with pytest.raises(ValidationError, match="reason"):
        services.position_close(position=position, reason=" ", actor=alice)
    order = services.position_close(position=position, reason="taking profit by hand", actor=alice)
    assert order.status == OrderStatus.OPEN and order.side == "sell" and order.amount == position.amount
    assert order.verdict["approved"] is True and order.decision["by"] == "manual"
    event = AuditEvent.objects.get(action="trading.position.close_requested")
    assert event.reason == "taking profit by hand" and event.actor_id == alice.pk
    md.candles_ingest(market=market, timeframe="1h", rows=part(candles, k, k + 1), source="test")
    tick(deployment, start + (k + 1) * HOUR + 5_000)
    order.refresh_from_db()
    assert order.status == OrderStatus.FILLED
    assert float(order.fills.get().price) == pytest.approx(candles.open[k] * 0.9995, rel=1e-12)
    assert Position.objects.get(deployment=deployment).amount == 0


def test_flatten_pauses_cancels_and_closes(setup, alice):
    candles, market, deployment, start = setup["candles"], setup["market"], setup["deployment"], setup["start"]
    k = _until_long(setup)
    result = services.deployment_flatten(deployment=deployment, reason="risk off", actor=alice)
    deployment.refresh_from_db()
    assert result["paused"] is True and deployment.state == DeploymentState.PAUSED
    assert result["close_order"]
    md.candles_ingest(market=market, timeframe="1h", rows=part(candles, k, k + 1), source="test")
    tick(deployment, start + (k + 1) * HOUR + 5_000)
    assert Order.objects.get(client_order_id=result["close_order"]).status == OrderStatus.FILLED
    assert Position.objects.get(deployment=deployment).amount == 0
    assert AuditEvent.objects.filter(action="trading.deployment.flattened", reason="risk off").exists()


def test_cancelling_a_resting_paper_entry_removes_it_from_the_engine(setup, alice):
    candles, market, deployment, start = setup["candles"], setup["market"], setup["deployment"], setup["start"]
    services.deployment_activate(deployment=deployment, reason="go")
    k = HISTORY
    tick(deployment, start + k * HOUR + 5_000)
    while not Order.objects.filter(deployment=deployment, status=OrderStatus.OPEN).exists():
        md.candles_ingest(market=market, timeframe="1h", rows=part(candles, k, k + 1), source="test")
        tick(deployment, start + (k + 1) * HOUR + 5_000)
        k += 1
    entry = Order.objects.get(deployment=deployment, status=OrderStatus.OPEN)
    services.order_cancel(order=entry, reason="not now", actor=alice)
    entry.refresh_from_db()
    assert entry.status == OrderStatus.CANCELED
    md.candles_ingest(market=market, timeframe="1h", rows=part(candles, k, k + 1), source="test")
    tick(deployment, start + (k + 1) * HOUR + 5_000)
    assert not Position.objects.filter(deployment=deployment, amount__gt=0).exists()  # nothing filled it


def test_closing_a_testnet_position_sends_a_market_order_now(live, sim, alice):
    from .test_live_loop import tick as live_tick

    live_tick(live)
    position = Position.objects.get(deployment=live)
    order = services.position_close(position=position, reason="manual exit", actor=alice)
    assert order.status == OrderStatus.FILLED and order.side == "sell"
    assert len(sim.orders()) == 2
    live.refresh_from_db()
    assert live.engine_state["values"][1] == 0  # the engine is flat (S_SIDE)
