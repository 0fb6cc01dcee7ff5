"""Default graduation policies (one per transition) and the live-approval permission for Operators.

These are the starting values only: operators change them in the admin, the API or the dashboard,
each change audited with its reason. Fractions: 0.2 = 20 %. Sharpe ratios annualised (365 days).
"""
from django.db import migrations

PROMOTE = [
    dict(from_stage="discovery", to_stage="validation", automatic=True, min_trades=30, min_oos_sharpe=0.5,
         max_drawdown=0.35, max_pbo=0.5, min_dsr=0.5),
    dict(from_stage="validation", to_stage="paper", automatic=True, min_trades=50, min_oos_sharpe=0.8,
         max_drawdown=0.25, max_pbo=0.3, min_dsr=0.9, start_deployment=True, deployment_capital_fraction=0.1),
    dict(from_stage="paper", to_stage="testnet", automatic=True, min_days_in_stage=14, min_trades_in_stage=20,
         max_tracking_error=0.05, max_live_drawdown=0.15, start_deployment=True, deployment_capital_fraction=0.1),
    dict(from_stage="testnet", to_stage="live", automatic=True, min_days_in_stage=30, min_trades_in_stage=30,
         max_tracking_error=0.05, max_live_drawdown=0.15, requires_approval=True),
]
DEMOTE = [
    dict(from_stage="validation", to_stage="discovery", automatic=False, max_pbo=0.5),
    dict(from_stage="paper", to_stage="validation", automatic=True, max_tracking_error=0.1, max_live_drawdown=0.2),
    dict(from_stage="testnet", to_stage="paper", automatic=True, max_tracking_error=0.1, max_live_drawdown=0.2),
    dict(from_stage="live", to_stage="testnet", automatic=True, max_tracking_error=0.1, max_live_drawdown=0.15),
]


def create(apps, schema_editor):
    Policy = apps.get_model("graduation", "GraduationPolicy")
    for kind, rows in (("promote", PROMOTE), ("demote", DEMOTE)):
        for row in rows:
            Policy.objects.update_or_create(kind=kind, from_stage=row["from_stage"],
                                            defaults={**row, "reason": "default from migration 0002"})


def grant_operators(apps, schema_editor):
    # The permission row is made by post_migrate; make it now so the grant does not wait a migrate.
    ContentType = apps.get_model("contenttypes", "ContentType")
    Permission = apps.get_model("auth", "Permission")
    Group = apps.get_model("auth", "Group")
    ct, _ = ContentType.objects.get_or_create(app_label="graduation", model="graduationpolicy")
    perm, _ = Permission.objects.get_or_create(content_type=ct, codename="approve_live",
                                               defaults={"name": "Can approve a config going live (four-eyes: "
                                                                 "not one's own request)"})
    for name in ("Operator", "Admin"):
        group, _ = Group.objects.get_or_create(name=name)
        group.permissions.add(perm)


def remove(apps, schema_editor):
    apps.get_model("graduation", "GraduationPolicy").objects.all().delete()


class Migration(migrations.Migration):
    dependencies = [
        ("graduation", "0001_initial"),
        ("accounts", "0002_roles"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]
    operations = [
        migrations.RunPython(create, remove),
        migrations.RunPython(grant_operators, migrations.RunPython.noop),
    ]
