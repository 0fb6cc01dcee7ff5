"""The kill switch against the real engine loop (trading's tick on a paper account): tripped, it
stops the running deployment's entries from the next tick on (they are stored refused, with the
check's reason, nothing sent), exits still go, it holds across a restart (all state is in the
database), and after release entries trade again. Also: the loop's entries carry the verdict and
a resize binds the order."""
from __future__ import annotations

import time
from decimal import Decimal

import pytest

from apps.marketdata import services as md
from apps.risk import selectors
from apps.risk import services as risk
from apps.strategies.services import config_create
from apps.trading import services
from apps.trading.models import OPEN_STATUSES, Mode, Order, OrderStatus
from tests.trading.test_engine_loop import HISTORY, HOUR, part, walk

pytestmark = pytest.mark.usefixtures("no_limits")
FUTURE = 200


@pytest.fixture
def loop(alice):
    now = int(time.time() * 1000)
    start = now - now % HOUR - HISTORY * HOUR
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
    services.deployment_activate(deployment=deployment, reason="go")

    def run(lo, hi):
        for k in range(lo, hi):
            md.candles_ingest(market=market, timeframe="1h", rows=part(candles, k, k + 1), source="test")
            result = services.deployment_tick_safely(deployment=deployment, now_ms=start + (k + 1) * HOUR + 5_000,
                                                     fetch=False)
            assert not result.get("error"), result

    run(HISTORY - 1, HISTORY)
    return deployment, run, candles


def entries(deployment, after_bar):
    return Order.objects.filter(deployment=deployment, signal_bar_time__gt=after_bar, decision__kind="entry")


def test_kill_switch_stops_a_running_paper_deployment_within_one_tick_and_holds_across_restart(loop):
    deployment, run, candles = loop
    run(HISTORY, HISTORY + 40)
    trip_bar = int(candles.time[HISTORY + 39])
    risk.killswitch_trip(scope="deployment", target=deployment, reason="stop now")
    run(HISTORY + 40, HISTORY + 90)
    # a restart of every process: nothing in memory survives, the switch is read from the database
    selectors._TRADES_CACHE.clear()
    selectors._CORR_CACHE.clear()
    run(HISTORY + 90, HISTORY + 140)
    refused = list(entries(deployment, trip_bar))
    assert refused, "the strategy tried no entry while the switch was on: the test proves nothing"
    for order in refused:
        assert order.status == OrderStatus.FAILED and order.reason_code == "risk_denied"
        assert "Kill switch active" in order.reason and order.verdict["outcome"] == "rejected"
        assert order.filled == 0 and not order.fills.exists()
    release_bar = int(candles.time[HISTORY + 139])
    risk.killswitch_release(switch=deployment_switch(deployment), reason="resume")
    run(HISTORY + 140, HISTORY + FUTURE)
    after = entries(deployment, release_bar)
    assert after.filter(status=OrderStatus.FILLED).exists()


def test_a_trip_cancels_the_paper_entry_resting_for_the_next_open(loop):
    deployment, run, candles = loop
    resting = None
    for k in range(HISTORY, HISTORY + FUTURE - 1):
        run(k, k + 1)
        resting = entries(deployment, 0).filter(status__in=OPEN_STATUSES).first()
        if resting:
            break
    assert resting, "no entry rested between two ticks: the test proves nothing"
    switch = risk.killswitch_trip(scope="account", target=deployment.account, reason="cancel it")
    assert switch.outcome["cancelled"] == [resting.client_order_id]
    resting.refresh_from_db()
    assert resting.status == OrderStatus.CANCELED
    run(k + 1, k + 2)  # the next open: nothing fills
    resting.refresh_from_db()
    assert resting.status == OrderStatus.CANCELED and not resting.fills.exists()


def deployment_switch(deployment):
    from apps.risk.models import KillSwitch

    return KillSwitch.objects.get(target_key=f"deployment:{deployment.pk}", released_at__isnull=True)


def test_the_loops_entries_are_resized_by_the_tightest_limit_and_say_so(loop):
    deployment, run, candles = loop
    risk.profile_update(scope="deployment", target=deployment, changes={"position_notional_max": "1000"},
                        reason="small")
    run(HISTORY, HISTORY + 120)
    filled = entries(deployment, 0).filter(status=OrderStatus.FILLED)
    assert filled.exists()
    for order in filled:
        assert order.verdict["outcome"] in ("approved", "resized")
        # at the price the check was asked about (the signal close); the fill comes a bar later
        assert order.amount * Decimal(str(order.decision["reference_price"])) <= Decimal("1000.000001")
    resized = [o for o in filled if o.verdict["outcome"] == "resized"]
    assert resized and resized[0].verdict["reasons"][0]["limit"] == "position_notional_max"
    assert resized[0].verdict["reasons"][0]["scope"] == "deployment"
