"""One loop pass reads the risk usage rows once (selectors.PassRows) instead of once per check.
The context built from them must equal a fresh one, and must see what the pass itself did:
orders placed by deployments ticked earlier in the pass, and a kill switch tripped mid-pass."""
from __future__ import annotations

from decimal import Decimal

import pytest

from apps.risk import selectors
from apps.risk import services as risk
from apps.risk.check import risk_check

from .conftest import hold, intent, order, set_limits, snapshot

pytestmark = pytest.mark.usefixtures("no_limits")


def usage(ctx):
    return [(s.key, s.equity, s.peak_equity, s.day_start_equity, dict(s.positions), dict(s.pending),
             s.orders_last_minute, s.kill_switch) for s in ctx.scopes]


def test_the_pass_context_equals_a_fresh_one_and_sees_the_passs_own_orders(alice, bob, make_deployment):
    a, b = make_deployment(alice, "BTC/USD"), make_deployment(bob, "ETH/USD")
    c = make_deployment(alice, "SOL/USD")
    hold(a, amount="2", price="100")
    snapshot(b, "9500")
    order(c, status="open", amount="3", price="10")
    set_limits(orders_per_minute=3)
    rows = selectors.PassRows()
    for d in (a, b, c):
        fresh = selectors.risk_context(intent(d))
        assert usage(selectors.risk_context(intent(d), rows=rows)) == usage(fresh)
    # a's tick places an entry (resting, open): b's next check counts it at the global scope
    before = {s.key: s for s in selectors.risk_context(intent(b), rows=rows).scopes}["global"]
    order(a, status="open", amount="1", price="100")
    rows.touch(a.pk)
    after = {s.key: s for s in selectors.risk_context(intent(b), rows=rows).scopes}["global"]
    assert after.orders_last_minute == before.orders_last_minute + 1 == 2
    assert after.pending["BTC/USD"] == Decimal("100")
    assert usage(selectors.risk_context(intent(b), rows=rows)) == usage(selectors.risk_context(intent(b)))
    # one more order anywhere reaches the global limit of 3: b's entry is refused on the pass's rows
    order(c, status="open", amount="1", price="10")
    rows.touch(c.pk)
    verdict = risk_check(intent=intent(b), context=selectors.risk_context(intent(b), rows=rows))
    assert verdict.outcome == "rejected" and verdict.reasons[0]["limit"] == "orders_per_minute"


def test_the_checked_deployments_own_new_orders_count_without_a_touch(alice, make_deployment):
    a = make_deployment(alice, "BTC/USD")
    set_limits(scope="deployment", target=a, open_positions_max=1)
    rows = selectors.PassRows()
    assert risk_check(intent=intent(a, symbol="ETH/USD"), context=selectors.risk_context(
        intent(a, symbol="ETH/USD"), rows=rows)).outcome == "approved"
    order(a, status="open", amount="1", price="100")  # an entry of this tick, same deployment
    verdict = risk_check(intent=intent(a, symbol="ETH/USD"),
                         context=selectors.risk_context(intent(a, symbol="ETH/USD"), rows=rows))
    assert verdict.outcome == "rejected" and verdict.reasons[0]["limit"] == "open_positions_max"


def test_a_kill_switch_tripped_mid_pass_applies_to_the_next_check(alice, make_deployment):
    a = make_deployment(alice, "BTC/USD")
    rows = selectors.PassRows()
    assert risk_check(intent=intent(a), context=selectors.risk_context(intent(a), rows=rows)).approved
    risk.killswitch_trip(scope="global", reason="mid-pass")
    verdict = risk_check(intent=intent(a), context=selectors.risk_context(intent(a), rows=rows))
    assert verdict.outcome == "rejected" and "Kill switch active" in verdict.reason


def test_a_stopped_deployment_leaves_the_global_usage_once_ticked(alice, make_deployment):
    from apps.trading import services as trading

    a, b = make_deployment(alice, "BTC/USD"), make_deployment(alice, "ETH/USD")
    hold(a, amount="1", price="100")
    rows = selectors.PassRows()
    glob = selectors.risk_context(intent(b), rows=rows).scopes[0]
    assert "BTC/USD" in glob.positions
    trading.deployment_stop(deployment=a, reason="done")
    rows.touch(a.pk)
    assert usage(selectors.risk_context(intent(b), rows=rows)) == usage(selectors.risk_context(intent(b)))
