"""The PostgreSQL read cache (CandleBlock) always answers what the candle table holds."""
from __future__ import annotations

import numpy as np
import pytest
from django.db import connection

from apps.marketdata import services, storage
from apps.marketdata.models import CandleBlock, RetentionPolicy
from apps.marketdata.selectors import candles_as_arrays

from .conftest import MIN, T0, make_candles

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql", reason="the block cache is PostgreSQL's")


@pytest.fixture(autouse=True)
def small_blocks(monkeypatch):
    monkeypatch.setattr(storage, "BLOCK_BARS", 16)  # many blocks from few candles


def same(a, b) -> bool:
    return all(np.array_equal(getattr(a, c), getattr(b, c)) for c in ("time", "open", "high", "low", "close", "volume"))


def test_cached_reads_equal_the_table_for_any_range(file_market):
    rows = make_candles(300)
    keep = np.ones(300, bool)
    keep[[5, 16, 17, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 299]] = False
    services.candles_ingest(market=file_market, timeframe="1m", rows=rows.take(keep))
    assert candles_as_arrays(file_market, "1m") is not None and CandleBlock.objects.count() > 10
    rng = np.random.default_rng(3)
    for _ in range(40):
        a, b = sorted(rng.integers(-20, 320, 2))
        lo, hi = T0 + int(a) * MIN, T0 + int(b) * MIN + int(rng.integers(0, 2)) * 30_000
        cached = candles_as_arrays(file_market, "1m", lo, hi)
        direct = storage.read_rows(file_market.pk, "1m", lo, hi)
        assert same(cached, direct), (a, b)
    assert same(candles_as_arrays(file_market, "1m"), rows.take(keep))


def test_a_write_after_a_cached_read_is_seen_by_the_next_read(file_market):
    rows = make_candles(100)
    services.candles_ingest(market=file_market, timeframe="1m", rows=rows)
    before = candles_as_arrays(file_market, "1m")
    revised = rows.take(slice(50, 51))
    services.candles_ingest(market=file_market, timeframe="1m", rows=type(rows)(
        revised.time, revised.open, revised.high + 1, revised.low, revised.close, revised.volume, timeframe="1m"))
    after = candles_as_arrays(file_market, "1m")
    assert after.high[50] == before.high[50] + 1 and after.high[49] == before.high[49]
    more = make_candles(10, start=T0 + 100 * MIN, seed=9)
    services.candles_ingest(market=file_market, timeframe="1m", rows=more)
    assert len(candles_as_arrays(file_market, "1m")) == 110


def test_retention_and_rebuild_drop_the_cache(file_market):
    services.candles_ingest(market=file_market, timeframe="1m", rows=make_candles(100))
    candles_as_arrays(file_market, "1m")
    RetentionPolicy.objects.create(timeframe="1m", keep_days=1)
    services.retention_apply(dry_run=False, now=T0 + 50 * MIN + 86_400_000)
    assert candles_as_arrays(file_market, "1m").time[0] == T0 + 50 * MIN
    assert len(candles_as_arrays(file_market, "1m")) == 50
    services.coverage_rebuild(market=file_market)
    assert not CandleBlock.objects.filter(market=file_market).exists()
    assert len(candles_as_arrays(file_market, "1m")) == 50


def test_weekly_blocks_follow_the_monday_grid(file_market):
    week = 7 * 86_400_000
    monday = 1_699_833_600_000  # 2023-11-13, a Monday
    rows = make_candles(40, start=monday, step=week)
    arrays = type(rows)(rows.time, rows.open, rows.high, rows.low, rows.close, rows.volume, timeframe="1w")
    services.candles_ingest(market=file_market, timeframe="1w", rows=arrays)
    assert same(candles_as_arrays(file_market, "1w"), arrays)
    starts = CandleBlock.objects.values_list("start_ms", flat=True)
    assert starts and all((b - 4 * 86_400_000) % (16 * week) == 0 for b in starts)  # Mondays since 1970-01-05


def test_reads_do_not_depend_on_the_coverage_table(file_market):
    rows = make_candles(100)
    services.candles_ingest(market=file_market, timeframe="1m", rows=rows)
    file_market.coverage.all().delete()
    assert same(candles_as_arrays(file_market, "1m"), rows)


def test_a_long_gap_is_read_through_empty_blocks(file_market):
    a = make_candles(20)
    b = make_candles(20, start=T0 + 1000 * MIN, seed=2)
    services.candles_ingest(market=file_market, timeframe="1m", rows=a)
    services.candles_ingest(market=file_market, timeframe="1m", rows=b)
    out = candles_as_arrays(file_market, "1m")
    assert out.time.tolist() == a.time.tolist() + b.time.tolist()
    assert CandleBlock.objects.filter(market=file_market, rows=0).count() > 50
    assert same(candles_as_arrays(file_market, "1m"), out)  # second read: all from blocks
