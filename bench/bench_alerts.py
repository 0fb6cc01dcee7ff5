"""Benchmark: alerts and operations figures.

1. alert_raise of a repeat (grouped: one row, count bumped, a live event) — what a failing loop
   costs when it raises every tick: target ≤ 50 ms per call (4 database round trips + publish).
2. alert_raise of new alerts with 20 channels to consider (row, audit, delivery rows; sending
   is a task): target ≤ 100 ms per call.
3. The alert centre's first page for a trader (visibility narrowed by target) over the alerts
   raised: target ≤ 100 ms median.
4. A /metrics scrape (platform figures read from the database) over those rows: target ≤ 200 ms.
5. One backup (pg_dump) of that database, and its size.

SYNTHETIC data in a throw-away PostgreSQL database.

    .venv/bin/python bench/bench_alerts.py [--alerts 3000] [--database-url ...] [--json]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from _common import django_on_fresh_database  # noqa: E402
from bench_marketdata import drop_database  # noqa: E402

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/tradepulse_bench_alerts"


def _ms(samples: list[float]) -> dict:
    samples = sorted(samples)
    return {"median_ms": round(1000 * statistics.median(samples), 2),
            "p95_ms": round(1000 * samples[int(0.95 * (len(samples) - 1))], 2)}


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=3_000)
    parser.add_argument("--database-url", default=os.environ.get("BENCH_ALERTS_DATABASE_URL", DEFAULT_URL))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    import logging

    django_on_fresh_database(args.database_url, TRADEPULSE_BACKUP_DIR=tempfile.mkdtemp(prefix="tp-bench-backups-"))
    logging.disable(logging.CRITICAL)  # the alerts log at their own level: time the work, not the terminal
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.core.management import call_command
    from django.test import Client

    from apps.alerts.models import Alert
    from apps.alerts.services import alert_raise, channel_create
    from apps.ops import services as ops

    try:
        call_command("migrate", verbosity=0)
        users = get_user_model().objects
        trader = users.create_user("trader", password="bench-password-123")
        trader.groups.add(Group.objects.get(name="Trader"))
        operator = users.create_user("operator", password="bench-password-123", is_staff=True)
        operator.groups.add(Group.objects.get(name="Operator"))
        for i in range(20):
            channel_create(owner=operator if i % 2 else trader, name=f"mail {i}", kind="email",
                           email=f"ops{i}@example.test", min_severity="critical")

        repeat = []
        for _ in range(300):
            t = time.perf_counter()
            alert_raise(severity="warning", source="bench", title="Repeating", key="repeat")
            repeat.append(time.perf_counter() - t)
        fresh = []
        for i in range(args.alerts):
            t = time.perf_counter()
            alert_raise(severity="critical" if i % 50 == 0 else "warning", source="bench", title=f"Alert {i}",
                        key=f"k{i}")
            fresh.append(time.perf_counter() - t)

        client = Client(HTTP_HOST="localhost")
        client.force_login(trader)
        listing = []
        for _ in range(20):
            t = time.perf_counter()
            assert client.get("/api/v1/alerts/?state=open").status_code == 200
            listing.append(time.perf_counter() - t)
        client.force_login(operator)
        scrape = []
        for _ in range(20):
            t = time.perf_counter()
            response = client.get("/metrics")
            scrape.append(time.perf_counter() - t)
        assert response.status_code == 200
        t = time.perf_counter()
        backup = ops.backup_run(backup_id=ops.backup_create(kind="manual", enqueue=False).pk)
        backup_s = time.perf_counter() - t
        result = {
            "alerts": Alert.objects.count(),
            "repeat_raise": _ms(repeat), "new_raise_20_channels": _ms(fresh),
            "trader_alert_list": _ms(listing), "metrics_scrape": _ms(scrape),
            "backup": {"seconds": round(backup_s, 2), "bytes": backup.size_bytes, "state": str(backup.state)},
        }
    finally:
        from django.db import connections

        connections.close_all()
        drop_database(args.database_url)
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>24}: {value}")
    return result


if __name__ == "__main__":
    main()
