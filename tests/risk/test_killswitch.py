"""Kill switch at every scope: stops entries at once, cancels open entry orders, optionally
flattens, needs a reason, holds across restarts (database), release audited; trips by itself."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.risk import selectors, services
from apps.risk.check import evaluate, risk_check
from apps.risk.models import KillSwitch
from apps.trading.models import Order, OrderStatus

from .conftest import hold, intent, order, set_limits, snapshot

pytestmark = pytest.mark.usefixtures("no_limits")


@pytest.mark.parametrize("scope", ["global", "user", "account", "deployment"])
def test_a_trip_at_any_scope_rejects_entries_until_released(scope, alice, olivia, dep):
    target = {"global": None, "user": alice, "account": dep.account, "deployment": dep}[scope]
    switch = services.killswitch_trip(scope=scope, target=target, reason="market halted", actor=olivia)
    v = risk_check(intent=intent(dep))
    assert v.outcome == "rejected" and v.reasons[0]["limit"] == "kill_switch" and v.reasons[0]["scope"] == scope
    assert "market halted" in v.reasons[0]["message"]
    services.killswitch_release(switch=switch, reason="resumed", actor=olivia)
    assert risk_check(intent=intent(dep)).outcome == "approved"
    actions = list(AuditEvent.objects.filter(action__startswith="risk.killswitch").order_by("id")
                   .values_list("action", "reason"))
    assert actions == [("risk.killswitch.tripped", "market halted"), ("risk.killswitch.released", "resumed")]


def test_it_holds_across_a_restart_because_it_lives_in_the_database(dep):
    services.killswitch_trip(scope="deployment", target=dep, reason="hold")
    # a new process has nothing in memory: it reads the switch from the database
    selectors._TRADES_CACHE.clear()
    selectors._CORR_CACHE.clear()
    assert KillSwitch.objects.get().active
    assert risk_check(intent=intent(dep)).outcome == "rejected"


def test_a_trip_needs_a_reason_and_permission(alice, bob, victor, dep):
    with pytest.raises(ValidationError):
        services.killswitch_trip(scope="deployment", target=dep, reason="", actor=alice)
    with pytest.raises(PermissionDenied):
        services.killswitch_trip(scope="deployment", target=dep, reason="x", actor=bob)
    with pytest.raises(PermissionDenied):
        services.killswitch_trip(scope="global", reason="x", actor=alice)
    with pytest.raises(PermissionDenied):
        services.killswitch_trip(scope="user", target=victor, reason="x", actor=victor)
    assert services.killswitch_trip(scope="deployment", target=dep, reason="mine", actor=alice).active


def test_tripping_twice_keeps_one_active_switch(dep):
    a = services.killswitch_trip(scope="global", reason="one")
    b = services.killswitch_trip(scope="global", reason="two")
    assert a.pk == b.pk and KillSwitch.objects.filter(released_at__isnull=True).count() == 1


def test_open_entry_orders_are_cancelled_and_exits_kept(dep, monkeypatch):
    cancelled = []

    def cancel(*, order, reason, broker=None, actor=None):  # the paper broker has no resting orders to cancel
        cancelled.append(order.client_order_id)
        Order.objects.filter(pk=order.pk).update(status=OrderStatus.CANCELED)
        return order

    monkeypatch.setattr(services.trading_services, "order_cancel", cancel)
    entry = order(dep, status="open")
    filled = order(dep, status="filled")
    stop = order(dep, side="sell", status="open", parent=filled)
    switch = services.killswitch_trip(scope="account", target=dep.account, reason="stop it")
    assert cancelled == [entry.client_order_id]
    assert switch.outcome["cancelled"] == [entry.client_order_id]
    assert Order.objects.get(pk=stop.pk).status == "open"


def test_flatten_closes_positions_with_an_exit_order(dep, monkeypatch):
    placed = []

    def place(**kw):
        placed.append(kw)
        return order(dep, side="sell", amount=str(kw["amount"]), status="filled")

    monkeypatch.setattr(services.trading_services, "order_place", place)
    monkeypatch.delattr(services.trading_services, "deployment_flatten", raising=False)
    hold(dep, amount="2.5", price="100")
    switch = services.killswitch_trip(scope="deployment", target=dep, reason="flatten", flatten=True)
    assert placed[0]["side"] == "sell" and placed[0]["amount"] == Decimal("2.5")
    assert placed[0]["verdict"]["approved"] is True
    assert switch.outcome["closed"][0]["symbol"] == dep.config.market.symbol


def test_the_watch_trips_on_drawdown_without_any_order_and_raises_an_alert(dep):
    from apps.alerts.models import Alert

    set_limits(drawdown_pct="10")
    snapshot(dep, "10000", at=timezone.now() - timedelta(hours=5))
    snapshot(dep, "8500")
    result = services.risk_watch()
    switch = KillSwitch.objects.get(released_at__isnull=True)
    assert result["kill_switches_tripped"] == [switch.pk] and switch.automatic and switch.scope == "global"
    assert switch.trigger["limit"] == "drawdown_pct" and switch.trigger["observed"] == "15"
    alert = Alert.objects.get(source="risk")
    assert alert.severity == "critical" and alert.title == "Kill switch tripped: Global"
    assert "Drawdown 15 %" in alert.message and alert.key == "kill-switch:global"
    assert services.risk_watch()["kill_switches_tripped"] == []  # already tripped: not again


def test_a_tripped_switch_still_lets_exits_through(dep):
    services.killswitch_trip(scope="deployment", target=dep, reason="x")
    ctx = selectors.risk_context(intent(dep))
    assert evaluate(intent(dep, reduces=True), ctx).outcome == "approved"
