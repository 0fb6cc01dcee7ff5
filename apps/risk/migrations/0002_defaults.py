"""The global risk profile's defaults: the platform's starting limits, as data (no risk number
lives in code). Changed afterwards only through risk.services.profile_update, with a reason.

Why these values: risk per trade 1 % of equity (entry to stop) is the usual professional ceiling;
one symbol at most 25 000 in the quote currency and 50 % of equity in one asset; no leverage on
spot (gross notional ≤ 1× equity, exposure ≤ 100 %); a 5 % day or a 20 % fall from the peak
stops entries and trips the kill switch; 60 orders a minute keeps well inside exchanges' rate
limits; 4 losing trades in a row pause a deployment's entries for 6 hours; a new entry whose
returns correlate above 0.9 with an open position over 100 bars is the same bet twice. The
drawdown throttle starts at 5 % drawdown and lowers risk per trade to 0.25 % at the drawdown
limit. Manual overrides last 24 hours unless given an expiry. An automatic trip cancels entry
orders but keeps positions (closing them is a person's decision unless set here).
"""
from decimal import Decimal

from django.db import migrations

DEFAULTS = {
    "risk_per_trade_pct": Decimal("1"),
    "position_notional_max": Decimal("25000"),
    "open_positions_max": 20,
    "asset_exposure_pct": Decimal("50"),
    "total_exposure_pct": Decimal("100"),
    "leverage_max": Decimal("1"),
    "daily_loss_pct": Decimal("5"),
    "drawdown_pct": Decimal("20"),
    "orders_per_minute": 60,
    "loss_streak_max": 4,
    "cooldown_minutes": 360,
    "correlation_max": Decimal("0.9"),
    "correlation_bars": 100,
    "adaptive_enabled": True,
    "adaptive_floor_pct": Decimal("0.25"),
    "adaptive_start_pct": Decimal("5"),
    "override_hours": 24,
    "auto_trip_flatten": False,
}


def create_defaults(apps, schema_editor):
    RiskProfile = apps.get_model("risk", "RiskProfile")
    RiskProfile.objects.update_or_create(target_key="global", defaults={
        "scope": "global", **DEFAULTS, "notes": "Platform defaults (data migration 0002)."})


def remove_defaults(apps, schema_editor):
    apps.get_model("risk", "RiskProfile").objects.filter(target_key="global").delete()


class Migration(migrations.Migration):
    dependencies = [("risk", "0001_initial")]
    operations = [migrations.RunPython(create_defaults, remove_defaults)]
