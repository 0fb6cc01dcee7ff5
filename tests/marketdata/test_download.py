"""Downloads from the simulator: exact rows, every fault switch, resume after a kill, overlap, cancel."""
from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from celery.contrib.testing.worker import start_worker
from django.core.exceptions import ValidationError
from django.db import connection
from django.utils import timezone

from apps.marketdata import services, storage
from apps.marketdata.models import Candle, DataQualityIssue, DownloadJob
from apps.marketdata.selectors import coverage_for_market
from apps.marketdata.services import downloads
from tradepulse.celery import app

from .conftest import MIN, T0, run_download, sim_rows, stored_rows


@pytest.fixture(autouse=True)
def small_pages(monkeypatch):
    monkeypatch.setattr(downloads, "PAGE_LIMIT", 100)


def test_download_stores_exactly_what_the_exchange_serves(alice, btc, sim, published,
                                                         django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        job = run_download(alice, btc, T0, T0 + 650 * MIN)
    assert job.state == "succeeded", job.error
    assert (job.progress, job.rows_fetched, job.rows_stored, job.rows_rejected) == (100.0, 650, 650, 0)
    assert job.candles_per_second > 0 and job.eta_seconds == 0
    assert job.message == "650 candles stored, 0 rejected (650 fetched)"
    assert stored_rows(btc, "1m") == sim_rows(sim, "BTC/USDT", "1m", T0, T0 + 650 * MIN)
    assert len(sim.requests_to("klines")) == 7  # pages of 100
    types = [m["type"] for _, m in published]
    assert types[-1] == "marketdata.download.finished" and "marketdata.download.progress" in types
    groups, final = published[-1]
    assert f"user-{alice.pk}" in groups and f"topic-download-{job.pk}" in groups
    assert final["data"]["progress"] == 100.0 and final["data"]["rows_stored"] == 650


def test_a_second_run_of_the_same_range_fetches_nothing(alice, btc, sim):
    run_download(alice, btc, T0, T0 + 300 * MIN)
    sim.clear_requests()
    job = run_download(alice, btc, T0, T0 + 300 * MIN)
    assert job.state == "succeeded" and job.progress == 100.0
    assert job.message == "Already stored: nothing to download"
    assert sim.requests_to("klines") == [] and Candle.objects.filter(market=btc).count() == 300


def test_a_range_overlapping_stored_data_fetches_only_the_rest(alice, btc, sim):
    run_download(alice, btc, T0 + 100 * MIN, T0 + 200 * MIN)
    sim.clear_requests()
    job = run_download(alice, btc, T0, T0 + 300 * MIN)
    assert job.rows_fetched == 200 and Candle.objects.filter(market=btc).count() == 300
    assert [int(r.params["startTime"]) for r in sim.requests_to("klines")] == [T0, T0 + 200 * MIN]


@pytest.mark.parametrize("faults, counter", [
    ({"rate_limit_next": 3}, "rate_limit"),
    ({"server_error_next": 3, "server_error_status": 503}, "server_error"),
    ({"server_error_next": 2, "server_error_status": 502}, "server_error"),
    ({"internal_error_next": 3}, "internal_error"),  # Binance HTTP 500 code -1000 (ccxt OperationFailed)
    ({"timeout_next": 2, "timeout_sleep_s": 1.0}, "timeout"),
    ({"timeout_next": 2, "timeout_mode": "drop"}, "timeout"),
])
def test_transient_faults_are_retried_and_the_job_completes(alice, btc, sim, settings, faults, counter):
    settings.CCXT_OVERRIDES["binance"]["timeout"] = 400
    sim.set_faults(**faults)
    job = run_download(alice, btc, T0, T0 + 250 * MIN)
    assert job.state == "succeeded", job.error
    assert sim.fault_counts[counter] >= 2
    assert stored_rows(btc, "1m") == sim_rows(sim, "BTC/USDT", "1m", T0, T0 + 250 * MIN)


@pytest.mark.parametrize("faults, error", [
    ({"rate_limit_next": 1000}, "binance kept refusing requests as too many after 6 attempts (rate limited, HTTP 429)."),
    ({"server_error_next": 1000}, "binance is not available after 6 attempts (server error or maintenance)"),
    ({"internal_error_next": 1000}, "binance kept failing after 6 attempts (exchange-side error, OperationFailed)"),
    ({"timeout_next": 1000, "timeout_sleep_s": 0.5}, "binance did not answer in time after 6 attempts (request timeout)."),
    ({"timeout_next": 1000, "timeout_mode": "drop"}, "Could not reach binance after 6 attempts (network error"),
])
def test_a_fault_that_does_not_clear_fails_the_job_with_a_clear_error(alice, btc, sim, settings, faults, error,
                                                                      published, django_capture_on_commit_callbacks):
    settings.CCXT_OVERRIDES["binance"]["timeout"] = 150
    run_download(alice, btc, T0, T0 + 100 * MIN)  # some data stored first
    sim.set_faults(**faults)
    with django_capture_on_commit_callbacks(execute=True):
        job = run_download(alice, btc, T0, T0 + 300 * MIN)
    assert job.state == "failed" and job.message == "Failed"
    assert error in job.error
    assert published[-1][1]["type"] == "marketdata.download.failed"
    assert published[-1][1]["data"]["error"] == job.error
    assert Candle.objects.filter(market=btc).count() == 100  # nothing half-written


def test_malformed_rows_are_rejected_recorded_and_the_rest_stored(alice, btc, sim):
    bad_times = {T0 + 10 * MIN: "high_lt_low", T0 + 20 * MIN: "negative_volume", T0 + 30 * MIN: "misaligned_time",
                 T0 + 40 * MIN: "non_numeric"}
    sim.set_faults(malformed_rows={"BTC/USDT": bad_times})
    job = run_download(alice, btc, T0, T0 + 100 * MIN)
    assert job.state == "succeeded" and job.rows_rejected == 4 and job.rows_stored == 96
    clean = sim_rows(sim, "BTC/USDT", "1m", T0, T0 + 100 * MIN)
    assert stored_rows(btc, "1m") == [r for r in clean if r[0] not in bad_times]
    issues = {(i.kind, i.start_ms) for i in DataQualityIssue.objects.filter(market=btc).exclude(kind="gap")}
    assert issues == {("bad_ohlc", T0 + 10 * MIN), ("bad_ohlc", T0 + 20 * MIN), ("misaligned", T0 + 30 * MIN + 30_000),
                      ("bad_ohlc", T0 + 40 * MIN)}
    gaps = DataQualityIssue.objects.filter(market=btc, kind="gap").order_by("start_ms")
    assert [(g.start_ms, g.exchange_has_no_data) for g in gaps] == [(t, False) for t in sorted(bad_times)]
    assert "the exchange returned only invalid rows" in gaps[0].detail


def test_missing_candles_are_remembered_as_no_data_at_the_exchange(alice, btc, sim):
    sim.set_faults(missing={"BTC/USDT": [(T0 + 50 * MIN, T0 + 80 * MIN)]})
    job = run_download(alice, btc, T0, T0 + 200 * MIN)
    assert job.state == "succeeded" and job.rows_stored == 170
    gap = DataQualityIssue.objects.get(market=btc, kind="gap")
    assert (gap.start_ms, gap.end_ms, gap.row_count, gap.exchange_has_no_data) == (T0 + 50 * MIN, T0 + 80 * MIN, 30, True)
    assert "the exchange returned no candles" in gap.detail
    cov = coverage_for_market(btc, "1m")
    assert [(g.start_ms, g.end_ms, g.exchange_has_no_data, g.fillable) for g in cov.gaps] == [
        (T0 + 50 * MIN, T0 + 80 * MIN, True, False)]
    sim.clear_requests()
    again = run_download(alice, btc, T0, T0 + 200 * MIN)  # known-empty range is not asked for again
    assert again.message == "Already stored: nothing to download" and sim.requests_to("klines") == []


def test_before_listing_the_exchange_has_no_data(alice, btc, sim):
    sim.add_market({"symbol": "NEW/USDT", "listing_time": T0 + 60 * MIN})
    services.exchange_load_markets(exchange=btc.exchange)
    new = btc.exchange.markets.get(symbol="NEW/USDT")
    job = run_download(alice, new, T0, T0 + 120 * MIN)
    assert job.state == "succeeded" and job.rows_stored == 60
    gap = DataQualityIssue.objects.get(market=new, kind="gap")
    assert (gap.start_ms, gap.end_ms, gap.exchange_has_no_data) == (T0, T0 + 60 * MIN, True)


def test_unknown_symbol_is_a_clear_stored_error(alice, btc, sim):
    sim.remove_market("BTC/USDT")
    job = run_download(alice, btc, T0, T0 + 10 * MIN)
    assert job.state == "failed" and job.error == "Unknown symbol 'BTC/USDT' on binance."


class Killed(BaseException):
    """A worker killed mid-way: no except clause of the service runs."""


def _kill_on(monkeypatch, module, name, call_number):
    original = getattr(module, name)
    calls = {"n": 0}

    def wrapper(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == call_number:
            raise Killed()
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, wrapper)
    return lambda: monkeypatch.setattr(module, name, original)


@pytest.mark.parametrize("where", [
    (downloads.exchanges, "call", 4),  # between pages: the third page was never fetched
    (downloads, "candles_ingest", 3),  # mid-page: fetched, not stored
    (storage, "coverage_add", 3),  # mid-transaction: candles copied, transaction rolled back
    (downloads, "_record_holes", 1),  # after the last page, before the job finished
])
def test_a_job_killed_at_any_moment_resumes_to_exactly_the_uninterrupted_rows(alice, btc, sim, monkeypatch, where):
    sim.set_faults(missing={"BTC/USDT": [(T0 + 120 * MIN, T0 + 130 * MIN)]},
                   malformed_rows={"BTC/USDT": [T0 + 250 * MIN]})
    reference = run_download(alice, btc, T0, T0 + 420 * MIN)
    expected = stored_rows(btc, "1m")
    assert len(expected) == 420 - 10 - 1
    Candle.objects.filter(market=btc).delete()
    btc.coverage.all().delete()
    DataQualityIssue.objects.filter(market=btc).delete()

    restore = _kill_on(monkeypatch, *where)
    job = services.download_start(owner=alice, market=btc, timeframe="1m", start_ms=T0, end_ms=T0 + 420 * MIN,
                                  enqueue=False)
    with pytest.raises(Killed):
        services.download_run(job_id=job.pk)
    restore()
    job.refresh_from_db()
    assert job.state == "running"  # the dead worker left it so
    assert len(stored_rows(btc, "1m")) <= len(expected)
    # The broker redelivers the task once the heartbeat is stale; the job is claimed again.
    DownloadJob.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - timedelta(minutes=5))
    job = services.download_run(job_id=job.pk)
    assert job.state == "succeeded" and job.attempts == 2 and job.progress == 100.0
    assert stored_rows(btc, "1m") == expected
    assert coverage_for_market(btc, "1m").ranges == storage.coverage_from_candles(btc.pk, "1m")
    assert [(g.start_ms, g.end_ms) for g in coverage_for_market(btc, "1m").gaps] == [
        (T0 + 120 * MIN, T0 + 130 * MIN), (T0 + 250 * MIN, T0 + 251 * MIN)]
    assert reference.rows_stored == len(expected)


def test_a_fresh_heartbeat_means_another_worker_has_it(alice, btc, sim):
    job = services.download_start(owner=alice, market=btc, timeframe="1m", start_ms=T0, end_ms=T0 + 10 * MIN,
                                  enqueue=False)
    DownloadJob.objects.filter(pk=job.pk).update(state="running", heartbeat_at=timezone.now())
    assert services.download_run(job_id=job.pk).state == "running"
    assert sim.requests_to("klines") == []


def test_cancel_takes_effect_between_pages(alice, btc, sim, monkeypatch, published,
                                          django_capture_on_commit_callbacks):
    original = downloads.candles_ingest
    calls = {"n": 0}

    def ingest_then_cancel(**kwargs):
        calls["n"] += 1
        result = original(**kwargs)
        if calls["n"] == 2:
            services.download_cancel(job=kwargs["job"], reason="test")
        return result

    monkeypatch.setattr(downloads, "candles_ingest", ingest_then_cancel)
    with django_capture_on_commit_callbacks(execute=True):
        job = run_download(alice, btc, T0, T0 + 1000 * MIN)
    assert job.state == "cancelled" and job.rows_stored == 200
    assert job.message == "Cancelled after 200 candles stored"
    assert Candle.objects.filter(market=btc).count() == 200
    assert published[-1][1]["type"] == "marketdata.download.cancelled"


def test_cancelling_a_queued_job_ends_it_at_once(alice, btc):
    job = services.download_start(owner=alice, market=btc, timeframe="1m", start_ms=T0, end_ms=T0 + 10 * MIN,
                                  enqueue=False)
    job = services.download_cancel(job=job)
    assert job.state == "cancelled" and job.message == "Cancelled before it started"
    assert services.download_run(job_id=job.pk).state == "cancelled"


def test_retry_resumes_a_failed_job_and_keeps_its_counters(alice, btc, sim):
    sim.set_faults(malformed_rows={})
    job = run_download(alice, btc, T0, T0 + 100 * MIN)
    sim.set_faults(rate_limit_next=1000)
    job = run_download(alice, btc, T0, T0 + 300 * MIN)
    assert job.state == "failed"
    sim.set_faults(rate_limit_next=0)
    with pytest.raises(ValidationError, match="only failed or cancelled downloads can be retried"):
        services.download_retry(job=DownloadJob.objects.filter(state="succeeded").first())
    services.download_retry(job=job)  # enqueued after commit: run it here
    job = services.download_run(job_id=job.pk)
    assert job.state == "succeeded" and job.rows_stored == 200 and job.attempts == 2
    assert Candle.objects.filter(market=btc).count() == 300


def test_download_start_explains_bad_ranges(alice, btc, file_market):
    with pytest.raises(ValidationError, match=r"The end \(2023-11-12T22:00:00Z\) must be after the start"):
        services.download_start(owner=alice, market=btc, timeframe="1m", start_ms=T0 + MIN, end_ms=T0, enqueue=False)
    with pytest.raises(ValidationError, match="is in the future"):
        services.download_start(owner=alice, market=btc, timeframe="1m", start_ms=4_000_000_000_000,
                                end_ms=4_100_000_000_000, enqueue=False)
    with pytest.raises(ValidationError, match="comes from imported files"):
        services.download_start(owner=alice, market=file_market, timeframe="1m", start_ms=T0, end_ms=T0 + MIN)
    with pytest.raises(ValidationError, match="unknown timeframe '7m'"):
        services.download_start(owner=alice, market=btc, timeframe="7m", start_ms=T0, end_ms=T0 + MIN)


def test_the_task_runs_the_job_created_before_it_was_queued(alice, btc, sim, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        job = services.download_start(owner=alice, market=btc, timeframe="1h", start_ms=T0, end_ms=T0 + 24 * 60 * MIN)
    assert callbacks  # queued only after the row was committed
    job.refresh_from_db()
    assert job.state == "succeeded" and job.rows_stored == 24


@pytest.mark.skipif(connection.vendor == "sqlite", reason="SQLite's shared in-memory test database locks whole "
                                                          "tables between threads")
@pytest.mark.django_db(transaction=True)
def test_overlapping_jobs_do_not_fetch_or_store_anything_twice(alice, btc, sim, published):
    sim.set_faults(latency_ms=15)
    first = services.download_start(owner=alice, market=btc, timeframe="1m", start_ms=T0, end_ms=T0 + 1500 * MIN,
                                    enqueue=False)
    second = services.download_start(owner=alice, market=btc, timeframe="1m", start_ms=T0 + 500 * MIN,
                                     end_ms=T0 + 2000 * MIN, enqueue=False)
    sim.clear_requests()
    served_before = sim.stats["candles_served"]

    def run(job_id):
        try:
            services.download_run(job_id=job_id)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(first.pk,))]
    threads[0].start()
    deadline = time.monotonic() + 30
    while (time.monotonic() < deadline and threads[0].is_alive()
           and not DownloadJob.objects.filter(pk=first.pk, rows_stored__gt=0).exists()):
        time.sleep(0.005)
    threads.append(threading.Thread(target=run, args=(second.pk,)))
    threads[1].start()
    for t in threads:
        t.join(timeout=60)
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.state, second.state) == ("succeeded", "succeeded")
    assert sim.stats["candles_served"] - served_before == 2000  # every candle fetched exactly once
    assert Candle.objects.filter(market=btc).count() == 2000
    assert first.rows_stored + second.rows_stored == 2000 and second.rows_stored == 500
    assert coverage_for_market(btc, "1m").ranges == [(T0, T0 + 2000 * MIN)]
    said = [m["data"]["message"] for _, m in published if m["data"].get("id") == second.pk]
    assert f"Waiting for download #{first.pk} of the same market and timeframe to finish" in said


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_on_the_downloads_queue_runs_a_job_started_through_the_api(api, alice, btc, sim):
    """The route marketdata.* → queue downloads, the job row committed before the task is sent."""
    app.conf.task_always_eager = False
    try:
        with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10, queues=["downloads"]):
            response = api(alice).post("/api/v1/download-jobs/", {"market": btc.pk, "timeframe": "1m", "start": T0,
                                                                  "end": T0 + 300 * MIN}, format="json")
            assert response.status_code == 201 and response.json()["state"] == "queued"
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not DownloadJob.objects.filter(state="succeeded").exists():
                time.sleep(0.1)
    finally:
        app.conf.task_always_eager = True
    job = DownloadJob.objects.get()
    assert (job.state, job.rows_stored) == ("succeeded", 300)
