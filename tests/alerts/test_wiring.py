"""The platform's failure points raise alerts, and resolve them when the cause goes away:
download failures, data-quality issues, jobs whose worker died (crash recovery)."""
from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from apps.alerts.models import Alert, AlertState
from apps.alerts.selectors import alerts_visible_to
from apps.marketdata import services as md
from apps.marketdata.models import DownloadJob
from tests.marketdata.conftest import MIN, T0, binance, btc, fast_retries, run_download, sim  # noqa: F401
from tradepulse.core import jobrunner
from tradepulse.core.jobs import JobState


def test_a_failed_download_raises_an_error_alert_that_resolves_when_the_retry_succeeds(alice, charlie, btc, sim):  # noqa: F811
    sim.set_faults(rate_limit_next=1000)
    job = run_download(alice, btc, T0, T0 + 120 * MIN)
    assert job.state == "failed"
    alert = Alert.objects.get(source="marketdata", key=f"download-failed:{job.pk}")
    assert alert.severity == "error" and alert.state == AlertState.OPEN
    assert alert.title == "Download failed: BTC/USDT 1m" and alert.message == job.error and job.error
    assert alert.target == job and alert.context["download"] == job.pk
    assert list(alerts_visible_to(alice)) == [alert] and not alerts_visible_to(charlie).exists()

    sim.set_faults(rate_limit_next=0)
    md.download_retry(job=job, reason="exchange is back")
    job = md.download_run(job_id=job.pk)
    assert job.state == "succeeded"
    alert.refresh_from_db()
    assert alert.state == AlertState.RESOLVED and alert.resolved_by is None
    assert alert.resolution == "The download was run again and succeeded."


def test_open_data_quality_issues_raise_a_warning_resolved_once_the_series_is_clean(alice, btc, sim):  # noqa: F811
    bad = [T0 + 10 * MIN, T0 + 11 * MIN]
    sim.set_faults(malformed_rows={"BTC/USDT": bad})
    job = run_download(alice, btc, T0, T0 + 60 * MIN)
    assert job.state == "succeeded" and job.rows_rejected == 2
    alert = Alert.objects.get(source="marketdata", key__startswith="quality:")
    assert alert.severity == "warning" and alert.title.startswith("Data quality: ") and "BTC/USDT 1m" in alert.title
    assert sum(alert.context["issues"].values()) >= 1
    # the exchange serves clean rows now; filling the gaps leaves the series clean
    sim.set_faults(malformed_rows={})
    for fill in md.gaps_fill(owner=alice, market=btc, timeframe="1m"):
        md.download_run(job_id=fill.pk)
    alert.refresh_from_db()
    assert alert.state == AlertState.RESOLVED, alert.resolution


def test_a_job_whose_worker_died_raises_an_alert_and_its_success_resolves_it(alice, btc, sim, settings,  # noqa: F811
                                                                              django_capture_on_commit_callbacks):
    settings.TRADEPULSE_JOB_STALE_AFTER_S = 60
    job = md.download_start(owner=alice, market=btc, timeframe="1m", start_ms=T0, end_ms=T0 + 30 * MIN, enqueue=False)
    DownloadJob.objects.filter(pk=job.pk).update(state=JobState.RUNNING, attempts=3, worker="w1:99:MainThread",
                                                 heartbeat_at=timezone.now() - timedelta(seconds=90))
    with django_capture_on_commit_callbacks(execute=True):
        assert [d["action"] for d in jobrunner.recover_lost_jobs()] == ["failed"]
    lost = Alert.objects.get(source="jobs")
    assert lost.severity == "error" and lost.title == f"Worker lost: {job} failed"
    assert "no heartbeat for 90 s" in lost.message and lost.context["worker"] == "w1:99:MainThread"
    assert Alert.objects.filter(source="marketdata", key=f"download-failed:{job.pk}", state="open").exists()
    md.download_retry(job=job, reason="worker replaced")
    assert md.download_run(job_id=job.pk).state == "succeeded"
    assert set(Alert.objects.values_list("state", flat=True)) == {AlertState.RESOLVED}
