"""Admin: every market-data page renders; actions go through the services."""
from __future__ import annotations

import numpy as np
import pytest

from apps.marketdata import services
from apps.marketdata.models import DataQualityIssue, DownloadJob, Market, RetentionPolicy

from .conftest import MIN, T0, make_candles


@pytest.fixture
def staff(client, olivia):
    client.force_login(olivia)
    return client


@pytest.mark.parametrize("model", ["exchange", "market", "downloadjob", "dataqualityissue", "candlecoverage",
                                   "retentionpolicy"])
def test_changelists_render(staff, btc, model, alice):
    services.download_start(owner=alice, market=btc, timeframe="1m", start_ms=T0, end_ms=T0 + MIN, enqueue=False)
    assert staff.get(f"/admin/marketdata/{model}/").status_code == 200


def test_job_list_shows_a_progress_bar_and_cancel_action_cancels(staff, alice, btc):
    job = services.download_start(owner=alice, market=btc, timeframe="1m", start_ms=T0, end_ms=T0 + MIN, enqueue=False)
    DownloadJob.objects.filter(pk=job.pk).update(progress=42.5)
    page = staff.get("/admin/marketdata/downloadjob/").content.decode()
    assert "width:42.5%" in page and "42.5 %" in page
    response = staff.post("/admin/marketdata/downloadjob/", {"action": "cancel", "_selected_action": [job.pk]},
                          follow=True)
    assert "1 download(s) cancelled or cancelling." in response.content.decode()
    assert DownloadJob.objects.get(pk=job.pk).state == "cancelled"
    response = staff.post("/admin/marketdata/downloadjob/", {"action": "retry", "_selected_action": [job.pk]},
                          follow=True)
    assert "1 download(s) queued again." in response.content.decode()


def test_jobs_in_admin_follow_visibility(client, alice, bob, btc):
    job = services.download_start(owner=alice, market=btc, timeframe="1m", start_ms=T0, end_ms=T0 + MIN, enqueue=False)
    bob.is_staff = True
    bob.save()
    client.force_login(bob)
    assert client.get(f"/admin/marketdata/downloadjob/{job.pk}/change/").status_code in (302, 404)


def test_load_markets_action(staff, binance, sim):
    response = staff.post("/admin/marketdata/exchange/", {"action": "load_markets", "_selected_action": [binance.pk]},
                          follow=True)
    assert "Binance: 3 markets (3 new, 0 updated, 0 deactivated)." in response.content.decode()
    assert Market.objects.filter(exchange=binance).count() == 3


def test_retention_dry_run_action_says_what_would_go(staff, file_market):
    services.candles_ingest(market=file_market, timeframe="1m", rows=make_candles(10))
    policy = RetentionPolicy.objects.create(timeframe="1m", keep_days=1)
    response = staff.post("/admin/marketdata/retentionpolicy/", {"action": "dry_run", "_selected_action": [policy.pk]},
                          follow=True)
    assert "Retention would delete 10 candles" in response.content.decode()


def test_resolve_issue_and_rebuild_coverage_actions(staff, file_market):
    services.candles_ingest(market=file_market, timeframe="1m",
                            rows=np.array([[T0, 100, 99, 98, 100.5, 1], [T0 + MIN, 1, 2, 0.5, 1.5, 1]], dtype=float))
    issue = DataQualityIssue.objects.get()
    staff.post("/admin/marketdata/dataqualityissue/", {"action": "resolve", "_selected_action": [issue.pk]})
    assert DataQualityIssue.objects.get().resolved_at is not None
    cov = file_market.coverage.get()
    response = staff.post("/admin/marketdata/candlecoverage/", {"action": "rebuild", "_selected_action": [cov.pk]},
                          follow=True)
    assert "Coverage rebuilt; 0 series corrected." in response.content.decode()
