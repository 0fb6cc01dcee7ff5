"""Retention: dry run says what would go, apply deletes it, guarded ranges survive."""
from __future__ import annotations

import pytest
from django_celery_beat.models import PeriodicTask

from apps.audit.models import AuditEvent
from apps.marketdata import services
from apps.marketdata.models import Candle, RetentionPolicy
from apps.marketdata.retention import (ProtectedRange, RetentionGuardError, register_retention_guard,
                                       unregister_retention_guard)
from apps.marketdata.selectors import coverage_for_market
from apps.marketdata.tasks import apply_retention

from .conftest import MIN, T0, make_candles

DAY = 86_400_000
NOW = T0 + 1000 * MIN + 3 * DAY  # "now" for these tests: candles are 3+ days old


@pytest.fixture
def series(file_market):
    services.candles_ingest(market=file_market, timeframe="1m", rows=make_candles(1000))
    hourly = make_candles(20, step=60 * MIN)
    services.candles_ingest(market=file_market, timeframe="1h", rows=type(hourly)(
        hourly.time, hourly.open, hourly.high, hourly.low, hourly.close, hourly.volume, timeframe="1h"))
    return file_market


@pytest.fixture
def guard():
    guards = []

    def add(*ranges):
        fn = lambda: list(ranges)  # noqa: E731
        guards.append(fn)
        register_retention_guard(fn)

    yield add
    for fn in guards:
        unregister_retention_guard(fn)


def test_dry_run_reports_what_would_go_and_deletes_nothing(series):
    RetentionPolicy.objects.create(timeframe="1m", keep_days=3)
    cutoff = NOW - 3 * DAY  # = T0 + 1000 min: everything older goes
    report = services.retention_apply(dry_run=True, now=NOW)
    assert report.candles == 1000 and report.dry_run
    assert [(i.symbol, i.timeframe, i.ranges) for i in report.items] == [("SYN/USD", "1m", [(T0, cutoff)])]
    assert "Retention would delete 1,000 candles" in report.describe()
    assert Candle.objects.filter(market=series).count() == 1020


def test_apply_deletes_old_candles_of_that_timeframe_only_and_is_audited(series):
    RetentionPolicy.objects.create(timeframe="1m", keep_days=3)
    RetentionPolicy.objects.create(timeframe="1h", keep_days=3650)
    report = services.retention_apply(dry_run=False, now=NOW - 400 * MIN)  # cutoff = T0 + 600 min
    assert report.candles == 600
    assert Candle.objects.filter(market=series, timeframe="1m").count() == 400
    assert Candle.objects.filter(market=series, timeframe="1h").count() == 20
    assert coverage_for_market(series, "1m").ranges == [(T0 + 600 * MIN, T0 + 1000 * MIN)]
    assert AuditEvent.objects.filter(action="marketdata.retention.applied").count() == 1


def test_a_guarded_range_is_never_removed(series, guard):
    RetentionPolicy.objects.create(timeframe="1m", keep_days=3)
    guard(ProtectedRange(series.pk, "1m", T0 + 100 * MIN, T0 + 200 * MIN, "backtest #7"),
          ProtectedRange(series.pk, None, T0 + 900 * MIN, None, "deployment #3"))
    dry = services.retention_apply(dry_run=True, now=NOW)
    assert dry.candles == 800
    assert [k["reason"] for k in dry.items[0].kept] == ["backtest #7", "deployment #3"]
    services.retention_apply(dry_run=False, now=NOW)
    left = Candle.objects.filter(market=series, timeframe="1m").order_by("open_time").values_list("open_time", flat=True)
    assert list(left) == [T0 + i * MIN for i in list(range(100, 200)) + list(range(900, 1000))]
    cov = coverage_for_market(series, "1m")
    assert cov.ranges == [(T0 + 100 * MIN, T0 + 200 * MIN), (T0 + 900 * MIN, T0 + 1000 * MIN)]
    # the hole retention made is not something "fill gaps" should download again
    assert cov.gaps[0].before_retention and not cov.gaps[0].fillable


def test_a_failing_guard_stops_retention_before_anything_is_deleted(series, guard):
    RetentionPolicy.objects.create(timeframe="1m", keep_days=3)

    def broken():
        raise ConnectionError("trading database unreachable")

    register_retention_guard(broken)
    try:
        with pytest.raises(RetentionGuardError, match="nothing was deleted"):
            services.retention_apply(dry_run=False, now=NOW)
    finally:
        unregister_retention_guard(broken)
    assert Candle.objects.filter(market=series).count() == 1020


def test_inactive_policies_do_nothing_and_the_beat_task_applies_active_ones(series):
    RetentionPolicy.objects.create(timeframe="1m", keep_days=1, active=False)
    assert apply_retention() == {"dry_run": False, "candles": 0, "items": []}


def test_the_daily_schedule_is_installed(db):
    task = PeriodicTask.objects.get(task="marketdata.apply_retention")
    assert task.enabled and task.queue == "downloads" and str(task.crontab.hour) == "3"
