"""Training runs on the one job runner: shared live events, a dead worker's run re-queued and
resumed, a stopped server's run marked interrupted and retried, Cancel on a run nobody holds,
failures classified, audited, published."""
from __future__ import annotations

import socket
import subprocess
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.accounts.services import object_share
from apps.audit.models import AuditEvent
from apps.marketdata.models import Candle
from apps.training import services
from apps.training.models import TrainingRun, TrainingTrial
from tradepulse.core import jobrunner
from tradepulse.core.jobs import JobState

from .training_fixtures import _optuna_connections_closed, training_kwargs, training_market  # noqa: F401


class WorkerDied(BaseException):
    """Stands in for SIGKILL: not an Exception, so nothing in the worker catches and records it."""


def dead_pid() -> int:
    """The id of a process of this host that has ended."""
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def half_done(run: TrainingRun, monkeypatch, after: int = 5) -> TrainingRun:
    """Run the worker until `after` trials are stored, then kill it (the row stays running)."""
    original = services._record_trial

    def die(run_, study, frozen):
        original(run_, study, frozen)
        if TrainingTrial.objects.filter(run=run_).count() == after:
            raise WorkerDied

    monkeypatch.setattr(services, "_record_trial", die)
    with pytest.raises(WorkerDied):
        services.training_execute_worker(run.pk, "w0")
    monkeypatch.setattr(services, "_record_trial", original)
    run.refresh_from_db()
    assert run.state == JobState.RUNNING and run.trials.count() == after
    return run


def actions(run) -> list[str]:
    return list(AuditEvent.objects.filter(target_id=str(run.pk), action__startswith="training.run.")
                .order_by("id").values_list("action", flat=True))


def test_a_colleague_the_run_is_shared_with_gets_its_live_updates(alice, bob, charlie, training_market, published,
                                                                   django_capture_on_commit_callbacks):
    run = services.training_create(owner=alice, **training_kwargs(training_market, n_workers=1, n_trials=4),
                                   enqueue=False)
    object_share(obj=run, with_user=bob)
    with django_capture_on_commit_callbacks(execute=True):
        services.training_execute_worker(run.pk, "w0")
    run.refresh_from_db()
    assert run.state == JobState.SUCCEEDED, run.error
    by_type: dict[str, list[list[str]]] = {}
    for groups, message in published:
        by_type.setdefault(message["type"], []).append(groups)
    for kind in ("training.run.started", "training.trial.finished", "training.run.finished"):
        assert by_type[kind], kind
        for groups in by_type[kind]:
            assert {f"user-{alice.pk}", f"user-{bob.pk}", f"topic-training-{run.pk}"} <= set(groups)
            assert f"user-{charlie.pk}" not in groups
    assert len(by_type["training.trial.finished"]) == 16


def test_the_run_is_audited_as_its_owner_by_way_of_the_worker(alice, training_market):
    run = services.training_create(owner=alice, **training_kwargs(training_market, n_workers=1, n_trials=4),
                                   enqueue=False)
    services.training_execute_worker(run.pk, "w0")
    run.refresh_from_db()
    finished = AuditEvent.objects.get(target_id=str(run.pk), action="training.run.finished")
    assert (finished.actor_id, finished.actor_label, finished.via) == (alice.pk, "alice", "system:training.run")
    assert finished.metadata["configs"] == run.result["configs_created"] and finished.metadata["verdict"]
    assert actions(run) == ["training.run.created", "training.run.finished"]


def test_a_failure_is_classified_for_the_user_and_the_run_fails(alice, training_market, published,
                                                                 django_capture_on_commit_callbacks):
    run = services.training_create(owner=alice, **training_kwargs(training_market, n_workers=1), enqueue=False)
    Candle.objects.filter(market=training_market).delete()  # e.g. retention removed them meanwhile
    with django_capture_on_commit_callbacks(execute=True):
        services.training_execute_worker(run.pk, "w0")
    run.refresh_from_db()
    assert (run.state, run.error_code) == (JobState.FAILED, "invalid")
    assert run.error == "No candles stored for this market, timeframe and range; download them first."
    failed = AuditEvent.objects.get(target_id=str(run.pk), action="training.run.failed")
    assert failed.reason == run.error and failed.metadata["error_code"] == "invalid"
    assert published[-1][1]["type"] == "training.run.failed" and published[-1][1]["data"]["error"] == run.error


def test_a_dead_workers_run_is_requeued_and_resumes_without_lost_or_duplicated_trials(
        alice, training_market, monkeypatch, django_capture_on_commit_callbacks):
    run = services.training_create(owner=alice, **training_kwargs(training_market, n_workers=2), enqueue=False)
    run = half_done(run, monkeypatch)
    # Nothing has kept its heartbeat for longer than the threshold: beat's recovery finds it.
    TrainingRun.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now() - timedelta(minutes=5))
    with django_capture_on_commit_callbacks(execute=True):
        outcomes = jobrunner.recover_lost_jobs()
    assert [(o["type"], o["id"], o["action"]) for o in outcomes] == [("training.run", run.pk, "requeued")]
    run.refresh_from_db()
    assert run.state == JobState.SUCCEEDED, run.error  # the re-sent workers (eager here) resumed and finished
    for study in ("fold-0", "fold-1", "fold-2", "final"):
        assert sorted(run.trials.filter(study=study).values_list("number", flat=True)) == list(range(12))
    assert run.result["trials"]["count"] == 48 and run.workers_finished == 2 and len(run.worker_reports) == 2
    assert actions(run) == ["training.run.created", "training.run.requeued", "training.run.finished"]


def test_a_run_a_stopped_server_left_running_is_marked_interrupted_and_retry_resumes_it(
        alice, training_market, monkeypatch, api, django_capture_on_commit_callbacks):
    run = services.training_create(owner=alice, **training_kwargs(training_market, n_workers=1), enqueue=False)
    run = half_done(run, monkeypatch)
    # Its worker was a process of this host that is gone; its heartbeat is recent (it was killed).
    TrainingRun.objects.filter(pk=run.pk).update(worker=f"{socket.gethostname()}:{dead_pid()}:MainThread",
                                                 heartbeat_at=timezone.now() - timedelta(seconds=25))
    outcomes = jobrunner.mark_interrupted()
    assert [(o["id"], o["action"]) for o in outcomes] == [(run.pk, "interrupted")]
    run.refresh_from_db()
    assert (run.state, run.error_code) == (JobState.FAILED, "interrupted")
    assert run.error.startswith("Interrupted when the server stopped at ")
    assert "UTC (5 of 48 trials (4 studies × 12): " in run.error and run.error.endswith(". Retry it to continue.")

    client = api(alice)
    shown = client.get(f"/api/v1/training-runs/{run.pk}/").json()
    assert (shown["state"], shown["error_code"], shown["error"]) == ("failed", "interrupted", run.error)
    with django_capture_on_commit_callbacks(execute=True):
        answer = client.post(f"/api/v1/training-runs/{run.pk}/retry/", {"reason": "server is back"}, format="json")
    assert answer.status_code == 200, answer.content
    assert answer.json()["state"] == "queued" and answer.json()["message"].startswith("Queued again to resume: 5 of 48")
    run.refresh_from_db()
    assert run.state == JobState.SUCCEEDED, run.error
    assert run.trials.count() == 48 and run.result["trials"]["count"] == 48  # the 5 were kept, 43 added
    assert actions(run) == ["training.run.created", "training.run.failed", "training.run.retried",
                            "training.run.finished"]
    # A finished run is not retried.
    again = client.post(f"/api/v1/training-runs/{run.pk}/retry/", {}, format="json")
    assert again.status_code == 400 and "only a failed, interrupted or cancelled run" in again.content.decode()


def test_a_live_server_run_is_not_marked_interrupted(alice, training_market):
    run = services.training_create(owner=alice, **training_kwargs(training_market), enqueue=False)
    alive = f"{socket.gethostname()}:{__import__('os').getppid()}:MainThread"
    TrainingRun.objects.filter(pk=run.pk).update(state=JobState.RUNNING, worker=alive, heartbeat_at=timezone.now())
    assert jobrunner.mark_interrupted() == []
    run.refresh_from_db()
    assert run.state == JobState.RUNNING


def test_stopping_the_process_ends_the_run_as_interrupted_between_trials(alice, training_market, monkeypatch):
    run = services.training_create(owner=alice, **training_kwargs(training_market, n_workers=1), enqueue=False)
    original = services._record_trial

    def stop_after_three(run_, study, frozen):
        original(run_, study, frozen)
        if TrainingTrial.objects.filter(run=run_).count() == 3:
            jobrunner.request_stop()  # Ctrl-C / SIGTERM reached the serve command

    monkeypatch.setattr(services, "_record_trial", stop_after_three)
    try:
        services.training_execute_worker(run.pk, "w0")
    finally:
        jobrunner._stopping.clear()
    run.refresh_from_db()
    assert (run.state, run.error_code, run.trials.count()) == (JobState.FAILED, "interrupted", 3)
    assert "(3 of 48 trials" in run.error and run.error.endswith("Retry it to continue.")
    failed = AuditEvent.objects.get(target_id=str(run.pk), action="training.run.failed")
    assert failed.metadata["error_code"] == "interrupted"


def test_cancel_of_a_run_whose_worker_is_gone_cancels_it_at_once(alice, training_market, monkeypatch, api):
    run = services.training_create(owner=alice, **training_kwargs(training_market, n_workers=1), enqueue=False)
    run = half_done(run, monkeypatch)
    TrainingRun.objects.filter(pk=run.pk).update(worker=f"{socket.gethostname()}:{dead_pid()}:MainThread")
    answer = api(alice).post(f"/api/v1/training-runs/{run.pk}/cancel/", {"reason": "stuck"}, format="json")
    assert answer.status_code == 200
    run.refresh_from_db()
    assert run.state == JobState.CANCELLED and run.message == "Cancelled · 5 of 48 trials"
    assert answer.json()["state"] == "cancelled"
    assert actions(run)[-2:] == ["training.run.cancel_requested", "training.run.cancelled"]


def test_retry_refuses_a_run_still_queued(alice, training_market, api):
    run = services.training_create(owner=alice, **training_kwargs(training_market), enqueue=False)
    answer = api(alice).post(f"/api/v1/training-runs/{run.pk}/retry/", {}, format="json")
    assert answer.status_code == 400 and f"Training run {run.pk} is queued" in answer.content.decode()
