"""Seed the common ccxt exchanges (no network: names and timeframes are ccxt's static facts;
markets are loaded on demand) and schedule the daily retention run in django-celery-beat."""
from django.db import migrations

SEED = ("binance", "bybit", "coinbase", "kraken", "okx", "kucoin", "bitstamp")
# Kept in the migration so it does not change when the app's code does.
TIMEFRAMES = ("1m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "12h", "1d", "1w")
TASK_NAME = "marketdata: apply retention policies"


def seed(apps, schema_editor):
    import ccxt

    Exchange = apps.get_model("marketdata", "Exchange")
    for code in SEED:
        if Exchange.objects.filter(code=code).exists() or not hasattr(ccxt, code):
            continue
        client = getattr(ccxt, code)()
        Exchange.objects.create(code=code, name=client.name or code, supports_sandbox=bool(client.urls.get("test")),
                                timeframes=[tf for tf in TIMEFRAMES if tf in (client.timeframes or {})])
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    schedule, _ = CrontabSchedule.objects.get_or_create(minute="15", hour="3", day_of_week="*", day_of_month="*",
                                                        month_of_year="*", timezone="UTC")
    PeriodicTask.objects.get_or_create(name=TASK_NAME, defaults={
        "task": "marketdata.apply_retention", "crontab": schedule, "queue": "downloads",
        "description": "Delete candles older than their timeframe's retention policy keeps (guards spare ranges "
                       "that deployments and running backtests need)."})


def unseed(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=TASK_NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("marketdata", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(seed, unseed)]
