"""Validation of every bad-row kind, the upsert (idempotent, revisions win), coverage upkeep."""
from __future__ import annotations

import numpy as np
import pytest

from apps.marketdata import services, storage
from apps.marketdata.models import Candle, DataQualityIssue
from apps.marketdata.selectors import candles_as_arrays, coverage_for_market

from .conftest import MIN, T0, make_candles

NAN = float("nan")


def ingest(market, rows):
    return services.candles_ingest(market=market, timeframe="1m", rows=np.array(rows, dtype=float), source="test")


def good(i, price=100.0):
    return [T0 + i * MIN, price, price + 1, price - 1, price + 0.5, 10.0]


@pytest.mark.parametrize("bad_row, kind, detail", [
    ([T0 + 1 * MIN, 100, 99, 98, 100.5, 1], "bad_ohlc", "high 99.0 is below max(open, close) 100.5"),
    ([T0 + 1 * MIN, 100, 102, 100.2, 101, 1], "bad_ohlc", "low 100.2 is above min(open, close) 100.0"),
    ([T0 + 1 * MIN, 100, 102, 99, 101, -3], "bad_ohlc", "negative volume -3.0"),
    ([T0 + 1 * MIN, NAN, NAN, 99, 101, 1], "bad_ohlc", "missing or non-numeric open, high"),
    ([T0 + 1 * MIN, 0, 102, 0, 101, 1], "bad_ohlc", "price ≤ 0"),
    ([T0 + 1 * MIN + 30_000, 100, 102, 99, 101, 1], "misaligned", "is not on the 1m grid"),
])
def test_each_bad_row_kind_is_rejected_and_recorded(file_market, bad_row, kind, detail):
    result = ingest(file_market, [good(0), bad_row, good(2)])
    assert (result.received, result.stored, result.rejected) == (3, 2, 1)
    assert candles_as_arrays(file_market, "1m").time.tolist() == [T0, T0 + 2 * MIN]
    issue = DataQualityIssue.objects.get(market=file_market, kind=kind)
    assert detail in issue.detail and issue.rejected and issue.resolved_at is None
    assert issue.start_ms == int(bad_row[0]) and issue.source == "test"


def test_duplicate_and_out_of_order_rows_are_rejected_and_recorded(file_market):
    result = ingest(file_market, [good(0), good(1), good(1, 200), good(3), good(2), good(4)])
    assert result.rejected == 2
    assert candles_as_arrays(file_market, "1m").time.tolist() == [T0, T0 + MIN, T0 + 3 * MIN, T0 + 4 * MIN]
    kinds = dict(DataQualityIssue.objects.values_list("kind", "detail"))
    assert "appears more than once" in kinds["duplicate"]
    assert "comes after the later time" in kinds["out_of_order"]


def test_outliers_and_stale_runs_are_stored_but_flagged(file_market):
    rows = [good(i) for i in range(5)] + [good(5, 180.0)] + [good(i) for i in range(6, 8)]
    rows += [[T0 + i * MIN, 100.5, 100.5, 100.5, 100.5, 0.0] for i in range(8, 20)]
    result = ingest(file_market, rows)
    assert result.rejected == 0 and result.stored == 20
    outlier = DataQualityIssue.objects.get(kind="outlier", start_ms=T0 + 5 * MIN)
    assert not outlier.rejected and "close moved" in outlier.detail
    stale = DataQualityIssue.objects.get(kind="stale")
    assert stale.row_count == 12 and not stale.rejected and "12 flat bars with no volume" in stale.detail


def test_upsert_is_idempotent_and_a_revised_candle_is_updated(file_market):
    rows = make_candles(500)
    assert services.candles_ingest(market=file_market, timeframe="1m", rows=rows).stored == 500
    assert services.candles_ingest(market=file_market, timeframe="1m", rows=rows).stored == 0
    revised = rows.take(slice(100, 101))
    revised = type(rows)(revised.time, revised.open, revised.high * 1.01, revised.low, revised.close,
                         revised.volume + 5, timeframe="1m")
    assert services.candles_ingest(market=file_market, timeframe="1m", rows=revised).stored == 1
    stored = candles_as_arrays(file_market, "1m")
    assert len(stored) == 500 and Candle.objects.filter(market=file_market).count() == 500
    assert stored.high[100] == pytest.approx(rows.high[100] * 1.01) and stored.volume[100] == rows.volume[100] + 5
    assert stored.close.tolist() == rows.close.tolist()


def test_coverage_is_kept_in_step_and_agrees_with_the_rebuild(file_market):
    rows = make_candles(300)
    keep = np.ones(300, bool)
    keep[[50, 51, 52, 200]] = False
    services.candles_ingest(market=file_market, timeframe="1m", rows=rows.take(keep))
    cov = coverage_for_market(file_market, "1m")
    assert cov.ranges == [(T0, T0 + 50 * MIN), (T0 + 53 * MIN, T0 + 200 * MIN), (T0 + 201 * MIN, T0 + 300 * MIN)]
    assert [(g.start_ms, g.end_ms, g.candles) for g in cov.gaps] == [(T0 + 50 * MIN, T0 + 53 * MIN, 3),
                                                                    (T0 + 200 * MIN, T0 + 201 * MIN, 1)]
    assert storage.coverage_from_candles(file_market.pk, "1m") == cov.ranges
    # filling one hole merges two ranges
    services.candles_ingest(market=file_market, timeframe="1m", rows=rows.take(slice(200, 201)))
    assert coverage_for_market(file_market, "1m").ranges == [(T0, T0 + 50 * MIN), (T0 + 53 * MIN, T0 + 300 * MIN)]


def test_wrong_coverage_falls_back_to_the_safe_upsert_and_rebuild_repairs_it(file_market):
    rows = make_candles(100)
    services.candles_ingest(market=file_market, timeframe="1m", rows=rows)
    file_market.coverage.all().delete()  # coverage now claims nothing is stored
    assert services.candles_ingest(market=file_market, timeframe="1m", rows=rows).stored == 0
    assert Candle.objects.filter(market=file_market).count() == 100
    services.coverage_rebuild(market=file_market)
    assert coverage_for_market(file_market, "1m").ranges == [(T0, T0 + 100 * MIN)]


def test_issue_is_resolved_when_a_later_page_brings_the_good_candle(file_market):
    ingest(file_market, [good(0), [T0 + MIN, 100, 99, 98, 100.5, 1], good(2)])
    issue = DataQualityIssue.objects.get(kind="bad_ohlc")
    ingest(file_market, [good(1)])
    issue.refresh_from_db()
    assert issue.resolved_at is not None


def test_candles_as_arrays_reads_ranges_without_model_instances(file_market):
    rows = make_candles(1000)
    services.candles_ingest(market=file_market, timeframe="1m", rows=rows)
    full = candles_as_arrays(file_market, "1m")
    assert full.time.dtype == np.int64 and full.close.dtype == np.float64
    assert np.array_equal(full.time, rows.time) and np.array_equal(full.open, rows.open)
    assert np.array_equal(full.volume, rows.volume)
    part = candles_as_arrays(file_market.pk, "1m", T0 + 10 * MIN, T0 + 20 * MIN)
    assert part.time.tolist() == [T0 + i * MIN for i in range(10, 20)]
    assert len(candles_as_arrays(file_market, "1m", end_ms=T0)) == 0
    assert len(candles_as_arrays(file_market, "5m")) == 0
    frame = part.to_frame()
    assert list(frame.columns) == ["time", "open", "high", "low", "close", "volume"]
    assert str(frame.index.tz) == "UTC" and frame.index[0].value // 1_000_000 == T0 + 10 * MIN
