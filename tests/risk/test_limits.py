"""Each limit of the pre-trade check, passing and failing, through risk_check on stored books
(positions, snapshots, orders, fills): the verdict names the limit, its value and the scope."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import numpy as np
import pytest
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.marketdata import services as md
from apps.marketdata.arrays import CandleArrays
from apps.risk.check import risk_check
from apps.risk.models import KillSwitch

from .conftest import hold, intent, market, order, round_trip, set_limits, snapshot

pytestmark = pytest.mark.usefixtures("no_limits")


def check(dep, **kw):
    return risk_check(intent=intent(dep, **kw))


def test_with_no_limit_set_an_entry_is_approved_as_asked(dep):
    v = check(dep, amount="3")
    assert v.outcome == "approved" and v.amount == Decimal("3") and v.reasons == []


def test_risk_per_trade_resizes_to_the_stop_distance_and_passes_when_small(dep):
    set_limits(risk_per_trade_pct="1")  # 1 % of 10 000 = 100 at risk
    v = check(dep, amount="10", price="100", stop="90")  # 10 per unit at risk -> at most 10 units
    assert v.outcome == "approved" and v.amount == Decimal("10")
    v = check(dep, amount="50", price="100", stop="90")
    assert v.outcome == "resized" and v.amount == Decimal("10")
    r = v.reasons[0]
    assert r["limit"] == "risk_per_trade_pct" and r["value"] == "1" and r["scope"] == "global"
    assert "resized from 50 to 10" in r["message"]


def test_without_a_stop_the_whole_notional_is_at_risk(dep):
    set_limits(risk_per_trade_pct="1")
    v = check(dep, amount="5", price="100")  # notional 500 > 100
    assert v.outcome == "resized" and v.amount == Decimal("1") and "no stop" in v.reasons[0]["message"]


def test_position_notional_counts_what_is_held(dep):
    set_limits(position_notional_max="1000")
    assert check(dep, amount="10", price="100").outcome == "approved"
    hold(dep, amount="4", price="100")  # 400 held
    v = check(dep, amount="10", price="100")
    assert v.outcome == "resized" and v.amount == Decimal("6") and v.reasons[0]["limit"] == "position_notional_max"
    hold(dep, amount="10", price="100")
    v = check(dep, amount="1", price="100")
    assert v.outcome == "rejected" and "no room" in v.reasons[0]["message"]


def test_open_positions_limit_rejects_a_new_symbol_but_not_adding_to_a_held_one(alice, make_deployment, dep):
    set_limits(open_positions_max=1)
    assert check(dep).outcome == "approved"
    other = make_deployment(alice, symbol="ETH/USD")
    hold(other, amount="1", price="100")
    v = check(dep)
    assert v.outcome == "rejected" and v.reasons[0]["limit"] == "open_positions_max"
    assert v.reasons[0]["observed"] == 1
    assert risk_check(intent=intent(other)).outcome == "approved"  # ETH already open: not a new position


def test_exposure_per_asset_is_a_share_of_the_scopes_equity(dep):
    set_limits(asset_exposure_pct="20")  # 20 % of 10 000 = 2 000 in BTC
    assert check(dep, amount="20", price="100").outcome == "approved"
    hold(dep, amount="15", price="100")
    v = check(dep, amount="20", price="100")
    assert v.outcome == "resized" and v.amount == Decimal("5") and v.reasons[0]["limit"] == "asset_exposure_pct"


def test_total_exposure_and_pending_entry_orders_count(alice, make_deployment, dep):
    set_limits(total_exposure_pct="50")  # 5 000
    assert check(dep, amount="50", price="100").outcome == "approved"
    order(dep, amount="20", price="100", status="open")  # 2 000 waiting to fill
    v = check(dep, amount="50", price="100")
    assert v.outcome == "resized" and v.amount == Decimal("30") and v.reasons[0]["limit"] == "total_exposure_pct"


def test_leverage(dep):
    set_limits(leverage_max="0.5")
    assert check(dep, amount="50", price="100").outcome == "approved"
    v = check(dep, amount="60", price="100")
    assert v.outcome == "resized" and v.amount == Decimal("50") and v.reasons[0]["limit"] == "leverage_max"


def test_daily_loss_rejects_and_trips_the_kill_switch(dep):
    set_limits(daily_loss_pct="5")
    day = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
    snapshot(dep, "10000", at=day - timedelta(minutes=5))
    snapshot(dep, "9600")
    assert check(dep).outcome == "approved"  # 4 %
    snapshot(dep, "9400")  # 6 %
    v = check(dep)
    assert v.outcome == "rejected" and v.reasons[0]["limit"] == "daily_loss_pct" and v.reasons[0]["observed"] == "6"
    switch = KillSwitch.objects.get(released_at__isnull=True)
    assert switch.automatic and switch.scope == "global" and "Daily loss 6 %" in switch.reason
    assert check(dep).reasons[0]["limit"] == "kill_switch"


def test_drawdown_from_peak(dep):
    set_limits(drawdown_pct="10")
    snapshot(dep, "12000", at=timezone.now() - timedelta(days=3))
    snapshot(dep, "11000")
    assert check(dep).outcome == "approved"  # 8.3 %
    snapshot(dep, "10700")  # 10.8 %
    v = check(dep)
    assert v.outcome == "rejected" and v.reasons[0]["limit"] == "drawdown_pct"
    assert KillSwitch.objects.filter(released_at__isnull=True, automatic=True).count() == 1


def test_orders_per_minute(dep):
    set_limits(orders_per_minute=3)
    order(dep, at=timezone.now() - timedelta(seconds=90))
    order(dep)
    order(dep)
    assert check(dep).outcome == "approved"  # 2 in the last minute
    order(dep)
    v = check(dep)
    assert v.outcome == "rejected" and v.reasons[0]["limit"] == "orders_per_minute" and v.reasons[0]["observed"] == 3


def test_cooldown_after_consecutive_losses_ends_by_itself(dep):
    set_limits(loss_streak_max=2, cooldown_minutes=60)
    now = timezone.now()
    round_trip(dep, buy="100", sell="90", at=now - timedelta(minutes=30))
    assert check(dep).outcome == "approved"  # one loss
    round_trip(dep, buy="100", sell="95", at=now - timedelta(minutes=10))
    v = check(dep)
    assert v.outcome == "rejected" and v.reasons[0]["limit"] == "loss_streak_max" and "cooling down" in v.reasons[0]["message"]
    ctx_later = __import__("apps.risk.selectors", fromlist=["risk_context"]).risk_context(
        intent(dep), now=now + timedelta(minutes=61))
    from apps.risk.check import evaluate
    assert evaluate(intent(dep), ctx_later).outcome == "approved"  # cooldown over
    round_trip(dep, buy="100", sell="110", at=now)  # a win ends the streak
    assert check(dep).outcome == "approved"


def _candles(m, closes):
    t0 = 1_700_000_000_000 - 1_700_000_000_000 % 3_600_000
    n = len(closes)
    close = np.asarray(closes, dtype=float)
    md.candles_ingest(market=m, timeframe="1h", source="test", rows=CandleArrays(
        t0 + np.arange(n, dtype=np.int64) * 3_600_000, close, close * 1.01, close * 0.99, close, np.ones(n),
        timeframe="1h"))


def test_correlation_with_open_positions(alice, exchange, make_deployment, dep):
    set_limits(correlation_max="0.8", correlation_bars=50)
    rng = np.random.default_rng(7)
    walk = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 60)))
    _candles(market(exchange, "BTC/USD"), walk)
    _candles(market(exchange, "ETH/USD"), walk * 0.05 * np.exp(rng.normal(0, 0.0005, 60)))  # the same bet
    _candles(market(exchange, "XRP/USD"), 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 60))))  # independent
    eth = make_deployment(alice, symbol="ETH/USD")
    xrp = make_deployment(alice, symbol="XRP/USD")
    hold(xrp, amount="1", price="100")
    assert check(dep).outcome == "approved"
    hold(eth, amount="1", price="5")
    v = check(dep)
    assert v.outcome == "rejected" and v.reasons[0]["limit"] == "correlation_max"
    assert "ETH/USD" in v.reasons[0]["message"] and float(v.reasons[0]["observed"]) > 0.9


def test_exits_are_never_blocked_by_entry_limits_or_the_kill_switch(dep):
    set_limits(open_positions_max=0, total_exposure_pct="0", orders_per_minute=0)
    from apps.risk import services
    services.killswitch_trip(scope="global", reason="test")
    hold(dep, amount="5")
    v = check(dep, amount="5", reduces=True)
    assert v.outcome == "approved" and v.amount == Decimal("5")
    assert check(dep).outcome == "rejected"


def test_a_rejection_is_audited_with_its_reasons(dep):
    set_limits(open_positions_max=0)
    check(dep)
    event = AuditEvent.objects.get(action="risk.check.rejected")
    assert "open positions" in event.reason and event.metadata["verdict"]["outcome"] == "rejected"


def test_the_verdict_dict_says_approved_and_the_reason_for_order_place(dep):
    set_limits(open_positions_max=0)
    data = check(dep).as_dict()
    assert data["approved"] is False and data["amount"] == "0" and "open positions" in data["reason"]
