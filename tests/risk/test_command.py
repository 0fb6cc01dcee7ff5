"""`manage.py risk`: show limits and usage, trip and release the kill switch, set limits,
override; --json; one clear line on stderr for an error."""
from __future__ import annotations

import json
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from apps.audit.models import AuditEvent
from apps.risk.check import risk_check
from apps.risk.models import KillSwitch, RiskProfile

from .conftest import intent


def run(*args) -> dict:
    out = StringIO()
    call_command("risk", *args, "--json", stdout=out)
    return json.loads(out.getvalue())


def test_show_prints_each_scope_with_limits_and_usage(dep):
    data = run("show", "--deployment", str(dep.pk))
    assert [s["scope"] for s in data["scopes"]] == ["global", "user", "account", "deployment"]
    out = StringIO()
    call_command("risk", "show", "--deployment", str(dep.pk), stdout=out)
    assert "Risk per trade" in out.getvalue() and "Global" in out.getvalue()


def test_trip_and_release_from_the_shell(dep):
    data = run("trip", "--deployment", str(dep.pk), "--reason", "maintenance")
    assert data["active"] is True and risk_check(intent=intent(dep)).outcome == "rejected"
    assert AuditEvent.objects.get(action="risk.killswitch.tripped").reason == "maintenance"
    data = run("release", "--deployment", str(dep.pk), "--reason", "done")
    assert data["active"] is False and not KillSwitch.objects.filter(released_at__isnull=True).exists()


def test_set_and_override(dep):
    data = run("set", "--global", "--reason", "tighter", "--limit-value", "daily_loss_pct=3",
               "--limit-value", "orders_per_minute=")
    assert data["changes"] == {"daily_loss_pct": "3", "orders_per_minute": None}
    assert RiskProfile.objects.get(target_key="global").orders_per_minute is None
    data = run("override", "--deployment", str(dep.pk), "--limit", "risk_per_trade_pct", "--value", "0.5",
               "--reason", "news")
    assert data["limit"] == "risk_per_trade_pct" and Decimal(data["value"]) == Decimal("0.5")


def test_errors_are_one_clear_line(dep):
    with pytest.raises(CommandError, match="reason"):
        call_command("risk", "trip", "--global", "--reason", "")
    with pytest.raises(CommandError, match="no deployment 999999"):
        call_command("risk", "show", "--deployment", "999999")
    with pytest.raises(CommandError, match="No active kill switch"):
        call_command("risk", "release", "--global", "--reason", "x")
