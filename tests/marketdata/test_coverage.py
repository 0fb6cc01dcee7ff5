"""Coverage and gaps: exact detection, fill gaps, gaps the exchange cannot fill are remembered."""
from __future__ import annotations

import numpy as np
import pytest

from apps.marketdata import services, storage
from apps.marketdata.models import CandleCoverage, DataQualityIssue, DownloadJob, RetentionPolicy
from apps.marketdata.selectors import coverage_for_market, coverage_list, fillable_gaps, missing_intervals
from apps.marketdata.services import downloads

from .conftest import MIN, T0, make_candles, run_download, sim_rows, stored_rows


@pytest.fixture(autouse=True)
def small_pages(monkeypatch):
    monkeypatch.setattr(downloads, "PAGE_LIMIT", 100)


def test_gaps_are_found_exactly_on_a_series_with_planted_holes(file_market):
    rows = make_candles(5000)
    holes = [(7, 8), (100, 103), (1999, 2000), (2000 + 1, 2000 + 50), (4998, 4999)]
    keep = np.ones(5000, bool)
    for a, b in holes:
        keep[a:b] = False
    # stored in scattered chunks, out of order, so coverage is merged from many upserts
    chunks = [slice(3000, 5000), slice(0, 1000), slice(2000, 3000), slice(1000, 2000)]
    for chunk in chunks:
        part = rows.take(chunk)
        services.candles_ingest(market=file_market, timeframe="1m", rows=part.take(keep[chunk]))
    cov = coverage_for_market(file_market, "1m")
    assert [(g.start_ms, g.end_ms) for g in cov.gaps] == [(T0 + a * MIN, T0 + b * MIN) for a, b in holes]
    assert [g.candles for g in cov.gaps] == [1, 3, 1, 49, 1]
    assert cov.candles == int(keep.sum()) and cov.first_ms == T0 and cov.end_ms == T0 + 5000 * MIN
    assert storage.coverage_from_candles(file_market.pk, "1m") == cov.ranges
    assert missing_intervals(file_market, "1m", T0 - 10 * MIN, T0 + 9 * MIN) == [(T0 - 10 * MIN, T0), (T0 + 7 * MIN, T0 + 8 * MIN)]
    listed = coverage_list()
    assert [(c.market_id, c.timeframe, len(c.gaps)) for c in listed] == [(file_market.pk, "1m", 5)]


def test_fill_gaps_starts_jobs_for_exactly_the_missing_intervals(alice, btc, sim, django_capture_on_commit_callbacks):
    run_download(alice, btc, T0, T0 + 100 * MIN)
    run_download(alice, btc, T0 + 130 * MIN, T0 + 200 * MIN)
    run_download(alice, btc, T0 + 205 * MIN, T0 + 300 * MIN)
    assert [(g.start_ms, g.end_ms) for g in fillable_gaps(btc, "1m")] == [(T0 + 100 * MIN, T0 + 130 * MIN),
                                                                         (T0 + 200 * MIN, T0 + 205 * MIN)]
    sim.clear_requests()
    with django_capture_on_commit_callbacks(execute=True):
        jobs = services.gaps_fill(owner=alice, market=btc, timeframe="1m")
    assert [(j.start_ms, j.end_ms, j.kind) for j in jobs] == [(T0 + 100 * MIN, T0 + 130 * MIN, "fill"),
                                                             (T0 + 200 * MIN, T0 + 205 * MIN, "fill")]
    assert [DownloadJob.objects.get(pk=j.pk).state for j in jobs] == ["succeeded", "succeeded"]
    assert [int(r.params["startTime"]) for r in sim.requests_to("klines")] == [T0 + 100 * MIN, T0 + 200 * MIN]
    assert coverage_for_market(btc, "1m").gaps == []
    assert stored_rows(btc, "1m") == sim_rows(sim, "BTC/USDT", "1m", T0, T0 + 300 * MIN)


def test_a_gap_the_exchange_cannot_fill_is_remembered_and_not_retried(alice, btc, sim,
                                                                       django_capture_on_commit_callbacks):
    run_download(alice, btc, T0, T0 + 100 * MIN)
    run_download(alice, btc, T0 + 150 * MIN, T0 + 200 * MIN)
    # the exchange lost those candles since: the fill attempt gets nothing for the gap
    sim.set_faults(missing={"BTC/USDT": [(T0 + 100 * MIN, T0 + 150 * MIN)]})
    with django_capture_on_commit_callbacks(execute=True):
        first = services.gaps_fill(owner=alice, market=btc, timeframe="1m")
    assert len(first) == 1
    gap = coverage_for_market(btc, "1m").gaps[0]
    assert (gap.start_ms, gap.end_ms, gap.exchange_has_no_data, gap.fillable) == (T0 + 100 * MIN, T0 + 150 * MIN,
                                                                                 True, False)
    issue = DataQualityIssue.objects.get(market=btc, kind="gap")
    assert issue.exchange_has_no_data and issue.job_id == first[0].pk
    sim.clear_requests()
    assert services.gaps_fill(owner=alice, market=btc, timeframe="1m") == []
    assert sim.requests_to("klines") == []
    # resolving the issue by hand makes the gap fillable again
    services.issue_resolve(issue=issue, reason="exchange restored its history")
    assert [(g.start_ms, g.end_ms) for g in fillable_gaps(btc, "1m")] == [(T0 + 100 * MIN, T0 + 150 * MIN)]


def test_a_gap_of_rejected_rows_is_tried_once_by_fill_gaps_then_remembered(alice, btc, sim,
                                                                            django_capture_on_commit_callbacks):
    sim.set_faults(malformed_rows={"BTC/USDT": [T0 + 42 * MIN]})
    run_download(alice, btc, T0, T0 + 100 * MIN)
    assert [(g.start_ms, g.fillable) for g in coverage_for_market(btc, "1m").gaps] == [(T0 + 42 * MIN, True)]
    with django_capture_on_commit_callbacks(execute=True):
        assert len(services.gaps_fill(owner=alice, market=btc, timeframe="1m")) == 1
    assert [(g.start_ms, g.fillable) for g in coverage_for_market(btc, "1m").gaps] == [(T0 + 42 * MIN, False)]
    assert services.gaps_fill(owner=alice, market=btc, timeframe="1m") == []


def test_fill_gaps_does_not_start_a_second_job_for_a_gap_already_queued(alice, btc, sim):
    run_download(alice, btc, T0, T0 + 10 * MIN)
    run_download(alice, btc, T0 + 20 * MIN, T0 + 30 * MIN)
    first = services.gaps_fill(owner=alice, market=btc, timeframe="1m")  # not committed: still queued
    assert len(first) == 1 and services.gaps_fill(owner=alice, market=btc, timeframe="1m") == []


def test_gaps_older_than_retention_are_not_filled(alice, btc, sim):
    run_download(alice, btc, T0, T0 + 10 * MIN)
    run_download(alice, btc, T0 + 20 * MIN, T0 + 30 * MIN)
    RetentionPolicy.objects.create(timeframe="1m", keep_days=1)  # 1 day before the real clock: long ago
    gap = coverage_for_market(btc, "1m").gaps[0]
    assert gap.before_retention and not gap.fillable and fillable_gaps(btc, "1m") == []


def test_rebuild_repairs_coverage_from_the_candles(file_market):
    services.candles_ingest(market=file_market, timeframe="1m", rows=make_candles(100))
    CandleCoverage.objects.filter(market=file_market).update(end_ms=T0 + 10 * MIN)
    changes = services.coverage_rebuild()
    assert changes == [{"market": file_market.pk, "timeframe": "1m", "before": 1, "after": 1}]
    assert coverage_for_market(file_market, "1m").ranges == [(T0, T0 + 100 * MIN)]
