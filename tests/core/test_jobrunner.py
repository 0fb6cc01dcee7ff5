"""The one job runner: what a user sees when a job fails, who the audit names, crash recovery."""
from __future__ import annotations

import io
import json
import logging
import time
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.backtests import services as backtests
from apps.backtests.models import BacktestRun
from apps.marketdata import services as md
from apps.marketdata.models import DownloadJob
from tests.backtests.conftest import MIN, T0, market, ms_dt  # noqa: F401  (fixture)
from tests.marketdata.conftest import T0 as MD_T0, binance, btc, sim  # noqa: F401  (fixtures)
from tradepulse.core import context, jobrunner
from tradepulse.core.jobs import JobState


def queued_run(owner, market) -> BacktestRun:  # noqa: F811
    return backtests.backtest_create(owner=owner, market=market, timeframe="1m", strategy_key="sma_cross",
                                     parameters={"fast": 10, "slow": 30}, start=ms_dt(T0),
                                     end=ms_dt(T0 + 1000 * MIN), enqueue=False)


def test_an_unexpected_error_shows_a_generic_message_with_the_request_id_and_no_detail(
        alice, market, monkeypatch, caplog, published, django_capture_on_commit_callbacks):
    def explode(*args, **kwargs):
        raise RuntimeError("connect to postgres://admin:hunter2@db failed")

    monkeypatch.setattr(backtests, "backtest_compute", explode)
    run = queued_run(alice, market)
    with (context.acting(actor_label="system:backtests.run", request_id="req-4711"), caplog.at_level(logging.ERROR),
          django_capture_on_commit_callbacks(execute=True)):
        backtests.backtest_execute(run.pk)
    run.refresh_from_db()
    assert run.state == JobState.FAILED and run.error_code == "internal"
    assert run.error == "Internal error (request req-4711); the details are in the server log."
    event = AuditEvent.objects.get(action="backtests.run.failed")
    assert "hunter2" not in event.reason and "hunter2" not in json.dumps(event.metadata)
    assert "Traceback" in caplog.text  # the full story is in the log, for us
    # The event payload a user's browser receives carries the generic message too.
    failed = [m for _, m in published if m["type"] == "backtests.run.failed"]
    assert failed and "hunter2" not in json.dumps(failed[-1])


def test_a_mapped_error_is_shown_as_its_message_with_its_code(alice, market, monkeypatch):
    from django.core.exceptions import ValidationError

    def refuse(*args, **kwargs):
        raise ValidationError({"range": "No candles stored for this market, timeframe and range; download them first."})

    monkeypatch.setattr(backtests, "backtest_compute", refuse)
    run = backtests.backtest_execute(queued_run(alice, market).pk)
    assert (run.state, run.error_code) == (JobState.FAILED, "invalid")
    assert run.error == "No candles stored for this market, timeframe and range; download them first."


def test_the_worker_acts_for_the_person_who_created_the_job(alice, market, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):  # through the task, as a queued run goes
        run = backtests.backtest_create(owner=alice, market=market, timeframe="1m", strategy_key="sma_cross",
                                        parameters={"fast": 10, "slow": 30}, start=ms_dt(T0),
                                        end=ms_dt(T0 + 1000 * MIN))
    run.refresh_from_db()
    assert run.state == JobState.SUCCEEDED and run.attempts == 1 and run.worker
    finished = AuditEvent.objects.get(action="backtests.run.finished", target_id=str(run.pk))
    assert (finished.actor_id, finished.actor_label, finished.via) == (alice.pk, "alice", "system:backtests.run")


def test_backtest_save_as_runs_the_stored_job_and_prints_the_stored_row(alice, market):
    out = io.StringIO()
    call_command("backtest", "--strategy", "sma_cross", "--params", '{"fast": 10, "slow": 30}', "--exchange",
                 "test-files", "--symbol", "SYN/USD", "--timeframe", "1m", "--save-as", "alice", "--json", stdout=out)
    data = json.loads(out.getvalue())
    run = BacktestRun.objects.get(pk=data["saved_run"])
    assert run.owner == alice and run.state == JobState.SUCCEEDED and data["state"] == "succeeded"
    assert data["final_equity"] == run.final_equity and data["metrics"] == run.metrics
    assert len(data["trades"]) == run.trades.count() == run.metrics["trade_count"] > 0
    actions = {e.action: e for e in AuditEvent.objects.filter(target_id=str(run.pk), action__startswith="backtests.")}
    assert {"backtests.run.created", "backtests.run.finished"} <= set(actions)
    assert all((e.actor_id, e.via) == (alice.pk, "command:backtest") for e in actions.values())


# --- crash recovery ----------------------------------------------------------------------------------

def _running_with_heartbeat(run: BacktestRun, seconds_ago: float, attempts: int = 1) -> None:
    BacktestRun.objects.filter(pk=run.pk).update(state=JobState.RUNNING, worker="gone-host:4242:MainThread",
                                                  attempts=attempts, started_at=timezone.now() - timedelta(minutes=5),
                                                  heartbeat_at=timezone.now() - timedelta(seconds=seconds_ago))


def test_a_job_with_a_fresh_heartbeat_is_left_alone(alice, market, settings):
    settings.TRADEPULSE_JOB_STALE_AFTER_S = 60
    run = queued_run(alice, market)
    _running_with_heartbeat(run, 30)
    assert jobrunner.recover_lost_jobs() == []
    run.refresh_from_db()
    assert run.state == JobState.RUNNING


def test_a_lost_job_is_queued_again_and_runs_to_the_end(alice, market, settings, django_capture_on_commit_callbacks,
                                                        published):
    settings.TRADEPULSE_JOB_STALE_AFTER_S = 60
    run = queued_run(alice, market)
    _running_with_heartbeat(run, 61)
    with django_capture_on_commit_callbacks(execute=True):  # the re-sent task runs (eager) after commit
        done = jobrunner.recover_lost_jobs()
    assert [(d["id"], d["action"]) for d in done] == [(run.pk, "requeued")]
    assert done[0]["reason"].startswith("Worker gone-host:4242:MainThread lost at ")
    assert "no heartbeat for 61 s" in done[0]["reason"]
    run.refresh_from_db()
    assert run.state == JobState.SUCCEEDED and run.attempts == 2 and run.trades.count() > 0
    requeued = AuditEvent.objects.get(action="backtests.run.requeued")
    assert (requeued.actor_id, requeued.via) == (alice.pk, "system:jobs.recover")
    assert "no heartbeat for 61 s" in requeued.reason


def test_a_job_lost_too_often_fails_with_the_reason_and_can_be_retried_at_once(alice, settings, sim, btc, published,
                                                                              django_capture_on_commit_callbacks):
    settings.TRADEPULSE_JOB_STALE_AFTER_S = 60
    job = md.download_start(owner=alice, market=btc, timeframe="1m", start_ms=MD_T0, end_ms=MD_T0 + 100 * MIN,
                            enqueue=False)
    last = timezone.now() - timedelta(seconds=75)
    DownloadJob.objects.filter(pk=job.pk).update(state=JobState.RUNNING, attempts=3, heartbeat_at=last,
                                                 worker="w1:99:MainThread")
    with django_capture_on_commit_callbacks(execute=True):
        assert [d["action"] for d in jobrunner.recover_lost_jobs()] == ["failed"]
    job.refresh_from_db()
    assert job.state == JobState.FAILED and job.error_code == "worker_lost"
    assert job.error == (f"Worker w1:99:MainThread lost at {last:%H:%M} UTC: no heartbeat for 75 s after 3 attempts. "
                         "Retry it to continue.")
    assert published[-1][1]["type"] == "marketdata.download.failed"
    md.download_retry(job=job, reason="worker replaced")
    job = md.download_run(job_id=job.pk)
    assert job.state == JobState.SUCCEEDED and job.rows_stored == 100


def test_a_download_whose_worker_is_lost_may_be_retried_before_beat_notices(alice, settings, sim, btc):
    settings.TRADEPULSE_JOB_STALE_AFTER_S = 60
    job = md.download_start(owner=alice, market=btc, timeframe="1m", start_ms=MD_T0, end_ms=MD_T0 + 10 * MIN,
                            enqueue=False)
    DownloadJob.objects.filter(pk=job.pk).update(state=JobState.RUNNING, heartbeat_at=timezone.now()
                                                 - timedelta(seconds=61))
    job = md.download_retry(job=job)
    assert job.state == JobState.QUEUED


def test_a_worker_presumed_dead_cannot_overwrite_the_job_it_lost(alice, market, monkeypatch, settings):
    """A worker that was only frozen (not dead) comes back after its job was given to another:
    its result is dropped; the row stays the new holder's."""
    settings.TRADEPULSE_JOB_STALE_AFTER_S = 60
    run = queued_run(alice, market)
    original = backtests.backtest_compute

    def frozen_then_taken_over(*args, **kwargs):
        BacktestRun.objects.filter(pk=run.pk).update(state=JobState.QUEUED, worker="")  # recovered meanwhile
        return original(*args, **kwargs)

    monkeypatch.setattr(backtests, "backtest_compute", frozen_then_taken_over)
    assert backtests.backtest_execute(run.pk) is None
    run.refresh_from_db()
    assert run.state == JobState.QUEUED and not AuditEvent.objects.filter(action="backtests.run.finished").exists()


@pytest.mark.django_db(transaction=True)
def test_the_heartbeat_thread_keeps_a_long_step_alive(alice, market):
    run = queued_run(alice, market)
    assert run.claim(worker="me")
    BacktestRun.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now() - timedelta(minutes=10))
    with jobrunner.heartbeat(run, "me", interval=0.05):
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            run.refresh_from_db()
            if run.heartbeat_at > timezone.now() - timedelta(seconds=5):
                break
            time.sleep(0.05)
    assert run.heartbeat_at > timezone.now() - timedelta(seconds=5)
    assert not run.is_lost


def test_download_candles_is_audited_as_the_owner_by_way_of_the_command(alice, binance, sim):  # noqa: F811
    call_command("download_candles", "--exchange", "binance", "--symbol", "BTC/USDT", "--timeframe", "1h",
                 "--start", str(MD_T0), "--end", str(MD_T0 + 24 * 60 * MIN), "--owner", "alice", "--json",
                 stdout=io.StringIO())
    job = DownloadJob.objects.get()
    assert job.state == JobState.SUCCEEDED and job.rows_stored == 24
    events = AuditEvent.objects.filter(target_id=str(job.pk), action__startswith="marketdata.download.")
    assert {e.action for e in events} == {"marketdata.download.created", "marketdata.download.finished"}
    assert {(e.actor_id, e.via) for e in events} == {(alice.pk, "command:download_candles")}


def test_a_redelivered_task_takes_over_at_once_from_a_dead_process_of_this_host(alice, market):  # noqa: F811
    """A pool process killed mid-job: its task comes back (reject_on_worker_lost) while the
    heartbeat is still fresh; the dead holder is recognised and the job runs now."""
    import socket
    import subprocess

    gone = subprocess.Popen(["true"])
    gone.wait()
    run = queued_run(alice, market)
    BacktestRun.objects.filter(pk=run.pk).update(state=JobState.RUNNING, attempts=1, heartbeat_at=timezone.now(),
                                                  worker=f"{socket.gethostname()}:{gone.pid}:MainThread")
    run = backtests.backtest_execute(run.pk)
    assert run is not None and run.state == JobState.SUCCEEDED and run.attempts == 2


def test_a_live_process_keeps_its_job(alice, market):  # noqa: F811
    import os
    import socket

    run = queued_run(alice, market)
    BacktestRun.objects.filter(pk=run.pk).update(state=JobState.RUNNING, heartbeat_at=timezone.now(),
                                                  worker=f"{socket.gethostname()}:{os.getppid()}:MainThread")
    assert backtests.backtest_execute(run.pk) is None


def test_beat_runs_the_recovery_task(alice, market, settings, django_capture_on_commit_callbacks):  # noqa: F811
    from tradepulse.celery import app

    app.loader.import_default_modules()
    entry = settings.CELERY_BEAT_SCHEDULE["recover-lost-jobs"]
    assert entry["schedule"] == settings.TRADEPULSE_JOB_RECOVER_EVERY_S <= 15
    run = queued_run(alice, market)
    _running_with_heartbeat(run, settings.TRADEPULSE_JOB_STALE_AFTER_S + 5, attempts=3)
    with django_capture_on_commit_callbacks(execute=True):
        app.tasks[entry["task"]].delay()  # eager in the tests: runs here, as a worker would
    run.refresh_from_db()
    assert run.state == JobState.FAILED and run.error_code == "worker_lost"
    assert run.error.endswith("after 3 attempts. Retry it to continue.")
