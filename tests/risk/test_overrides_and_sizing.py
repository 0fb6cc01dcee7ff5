"""Overrides (reason, expiry, adaptive control resumes by itself) and the adaptive drawdown
throttle (always inside the profile's bounds; each change stored with its inputs and reason)."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.risk import selectors, services
from apps.risk.check import evaluate, risk_check
from apps.risk.models import RiskOverride, SizingAdjustment

from .conftest import intent, set_limits, snapshot

pytestmark = pytest.mark.usefixtures("no_limits")


@pytest.fixture
def throttle(db):
    set_limits(risk_per_trade_pct="2", drawdown_pct="20", adaptive_enabled=True, adaptive_floor_pct="0.5",
               adaptive_start_pct="5", override_hours=24)


def test_override_lasts_the_profiles_default_and_needs_a_reason(olivia, dep, throttle):
    with pytest.raises(ValidationError):
        services.override_create(scope="deployment", target=dep, limit="risk_per_trade_pct", value="1", reason="")
    before = timezone.now()
    o = services.override_create(scope="deployment", target=dep, limit="risk_per_trade_pct", value="1.5",
                                 reason="news day", actor=olivia)
    assert timedelta(hours=23, minutes=59) < o.expires_at - before <= timedelta(hours=24, seconds=5)
    assert AuditEvent.objects.get(action="risk.override.created").reason == "news day"


def test_an_override_replaces_the_scope_value_until_it_expires(dep, throttle):
    set_limits("deployment", dep, position_notional_max="500")
    services.override_create(scope="deployment", target=dep, limit="position_notional_max", value="800",
                             reason="liquid market", expires_at=timezone.now() + timedelta(hours=1))
    v = risk_check(intent=intent(dep, amount="10", price="100", stop="99"))
    assert v.amount == Decimal("8") and v.overrides[0]["limit"] == "position_notional_max"
    later = selectors.risk_context(intent(dep), now=timezone.now() + timedelta(hours=2))
    assert evaluate(intent(dep, amount="10", price="100", stop="99"), later).amount == Decimal("5")


def test_expiry_is_recorded_and_adaptive_control_resumes_by_itself(dep, throttle):
    snapshot(dep, "10000", at=timezone.now() - timedelta(days=1))
    snapshot(dep, "8750")  # 12.5 % drawdown: halfway from 5 to 20 -> 0.5 + 1.5 * 0.5 = 1.25 %
    o = services.override_create(scope="deployment", target=dep, limit="risk_per_trade_pct", value="2",
                                 reason="manual", expires_at=timezone.now() + timedelta(minutes=30))
    ctx = selectors.risk_context(intent(dep))
    assert ctx.adaptive is None  # a person chose the value
    v = evaluate(intent(dep, amount="100", price="100", stop="90"), ctx)
    assert v.risk_per_trade_pct == "2"
    after = timezone.now() + timedelta(hours=1)
    ctx = selectors.risk_context(intent(dep), now=after)
    assert ctx.adaptive["risk_pct"] == Decimal("1.25")
    v = evaluate(intent(dep, amount="100", price="100", stop="90"), ctx)
    assert v.risk_per_trade_pct == "1.25" and "adaptive" in v.reasons[0]["message"]
    assert services.overrides_expire(now=after) == 1
    o.refresh_from_db()
    assert o.expiry_recorded_at == after
    assert AuditEvent.objects.filter(action="risk.override.expired").count() == 1


@pytest.mark.parametrize("equity, expected", [("10000", "2"), ("9600", "2"), ("8750", "1.25"), ("8000", "0.5"),
                                              ("5000", "0.5")])
def test_the_throttle_stays_between_the_floor_and_the_profile(dep, throttle, equity, expected):
    snapshot(dep, "10000", at=timezone.now() - timedelta(days=1))
    snapshot(dep, equity)
    ctx = selectors.risk_context(intent(dep))
    assert ctx.adaptive["risk_pct"] == Decimal(expected)
    assert Decimal("0.5") <= ctx.adaptive["risk_pct"] <= Decimal("2")


def test_the_throttle_never_exceeds_a_tighter_scope(dep, throttle):
    set_limits("deployment", dep, risk_per_trade_pct="0.3")  # below the floor: the floor follows it down
    ctx = selectors.risk_context(intent(dep))
    assert ctx.adaptive["risk_pct"] == Decimal("0.3")


def test_each_adjustment_is_stored_with_inputs_and_reason(dep, throttle):
    snapshot(dep, "10000", at=timezone.now() - timedelta(days=1))
    services.sizing_update(deployment=dep)
    snapshot(dep, "8750")
    services.sizing_update(deployment=dep)
    services.sizing_update(deployment=dep)  # unchanged: no new row
    rows = list(SizingAdjustment.objects.order_by("time", "id"))
    assert [(r.risk_before_pct, r.risk_after_pct) for r in rows] == [(None, Decimal("2")),
                                                                      (Decimal("2"), Decimal("1.25"))]
    assert rows[1].inputs["drawdown_pct"] == "12.5000" and "between the throttle start" in rows[1].reason


def test_revoking_an_override_ends_it_now(olivia, dep, throttle):
    o = services.override_create(scope="global", limit="leverage_max", value="3", reason="x", actor=olivia)
    services.override_revoke(override=o, reason="done", actor=olivia)
    assert not RiskOverride.objects.get().active
    with pytest.raises(ValidationError):
        services.override_revoke(override=o, reason="again", actor=olivia)
