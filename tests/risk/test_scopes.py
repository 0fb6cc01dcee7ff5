"""Four scopes: the tightest wins and the verdict names the scope that bound it; who may edit."""
from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from apps.audit.models import AuditEvent
from apps.risk import services
from apps.risk.check import risk_check
from apps.risk.models import RiskProfile

from .conftest import hold, intent, set_limits

pytestmark = pytest.mark.usefixtures("no_limits")


def test_defaults_come_from_the_data_migration(db):
    RiskProfile.objects.all().delete()
    from importlib import import_module

    from django.apps import apps as django_apps
    import_module("apps.risk.migrations.0002_defaults").create_defaults(django_apps, None)
    g = RiskProfile.objects.get(target_key="global")
    assert g.risk_per_trade_pct == Decimal("1") and g.override_hours == 24 and g.drawdown_pct == Decimal("20")


@pytest.mark.parametrize("tight", ["global", "user", "account", "deployment"])
def test_the_tightest_scope_wins_and_is_named(tight, alice, dep):
    targets = {"global": None, "user": alice, "account": dep.account, "deployment": dep}
    for scope, target in targets.items():
        set_limits(scope, target, position_notional_max="500" if scope == tight else "2000")
    v = risk_check(intent=intent(dep, amount="10", price="100"))
    assert v.outcome == "resized" and v.amount == Decimal("5")
    assert v.reasons[0]["scope"] == tight and v.reasons[0]["value"] == "500"


def test_account_scope_aggregates_every_deployment_on_the_account(alice, make_deployment, dep):
    sibling = make_deployment(alice, symbol="ETH/USD", account=dep.account)
    set_limits("account", dep.account, total_exposure_pct="10")  # of both deployments' equity: 2 000
    hold(sibling, amount="15", price="100")
    v = risk_check(intent=intent(dep, amount="10", price="100"))
    assert v.outcome == "resized" and v.amount == Decimal("5") and v.reasons[0]["scope"] == "account"


def test_another_users_positions_do_not_count_at_user_scope(alice, bob, make_deployment, dep):
    set_limits("user", alice, open_positions_max=1)
    hold(make_deployment(bob, symbol="ETH/USD"), amount="1")
    assert risk_check(intent=intent(dep)).outcome == "approved"


def test_edits_need_a_reason_and_are_audited_before_and_after(alice, olivia, dep):
    with pytest.raises(ValidationError):
        services.profile_update(scope="global", changes={"leverage_max": "2"}, reason="  ", actor=olivia)
    services.profile_update(scope="global", changes={"leverage_max": "2"}, reason="more room", actor=olivia)
    event = AuditEvent.objects.filter(action__startswith="risk.profile").latest("id")
    assert event.reason == "more room" and event.changes == {"leverage_max": [None, "2"]}
    assert event.actor_label == "olivia"


def test_only_operators_change_global_limits_and_owners_their_own(alice, bob, victor, olivia, dep):
    with pytest.raises(PermissionDenied):
        services.profile_update(scope="global", changes={"leverage_max": "9"}, reason="x", actor=alice)
    with pytest.raises(PermissionDenied):
        services.profile_update(scope="deployment", target=dep, changes={"leverage_max": "1"}, reason="x", actor=bob)
    with pytest.raises(PermissionDenied):
        services.profile_update(scope="user", target=victor, changes={"leverage_max": "1"}, reason="x", actor=victor)
    services.profile_update(scope="deployment", target=dep, changes={"leverage_max": "1"}, reason="x", actor=alice)
    services.profile_update(scope="user", target=alice, changes={"leverage_max": "1"}, reason="x", actor=olivia)


def test_a_bad_value_is_refused_naming_the_field(olivia, db):
    with pytest.raises(ValidationError) as exc:
        services.profile_update(scope="global", changes={"correlation_max": "1.5"}, reason="x", actor=olivia)
    assert "correlation_max" in exc.value.message_dict
    with pytest.raises(ValidationError):
        services.profile_update(scope="global", changes={"speed": "1"}, reason="x", actor=olivia)
