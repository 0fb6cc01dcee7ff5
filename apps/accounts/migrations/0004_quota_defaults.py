"""Default limits on expensive work per role (issue 9, finding 4). Operators change them in the
admin, with a reason; a user's own limit overrides their roles'.

Why these numbers: a Trader may keep a few jobs of each kind going and size a training run
like a thorough study (2,000 trials per study over 20 folds is 42,000 backtests), not the
100,000 trials × 64 workers × 50 folds the review could queue; 5 million candles is ten years
of 1-minute bars. Operators and Admins run the platform and get more. Viewers start nothing.
"""
from django.db import migrations

KEYS = ("downloads_concurrent", "backtests_concurrent", "training_concurrent", "download_candles",
        "training_trials", "training_workers", "training_folds")
DEFAULTS = {
    "Admin": (20, 20, 10, 50_000_000, 100_000, 64, 50),
    "Operator": (20, 20, 10, 50_000_000, 20_000, 32, 50),
    "Trader": (10, 20, 10, 5_000_000, 2_000, 8, 20),
    "Viewer": (0, 0, 0, 0, 0, 0, 0),
}
REASON = "Default from migration accounts.0004_quota_defaults (issue 9: quotas on expensive work)."


def create_defaults(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Quota = apps.get_model("accounts", "Quota")
    for role, values in DEFAULTS.items():
        group, _ = Group.objects.get_or_create(name=role)
        for key, value in zip(KEYS, values):
            Quota.objects.get_or_create(key=key, role=group, defaults={"value": value, "reason": REASON})


def remove_defaults(apps, schema_editor):
    apps.get_model("accounts", "Quota").objects.filter(user__isnull=True, reason=REASON).delete()


class Migration(migrations.Migration):
    dependencies = [("accounts", "0003_quota")]
    operations = [migrations.RunPython(create_defaults, remove_defaults)]
