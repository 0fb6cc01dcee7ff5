"""Training runs end to end: create → eager workers → trials, validation, configs; refusals; cancel."""
from __future__ import annotations

import threading

import pytest
from django.core.exceptions import ValidationError
from django.db import connection

from apps.training import services
from apps.training.models import TrainingRun, TrainingTrial
from apps.strategies.models import Source, Stage, StrategyConfig
from tradepulse.core.jobs import JobState

from .conftest import MIN, T0, ms_dt
from .training_fixtures import _optuna_connections_closed, training_kwargs, training_market  # noqa: F401


def create(owner, market, capture, **overrides):
    with capture(execute=True):
        run = services.training_create(owner=owner, **training_kwargs(market, **overrides))
    run.refresh_from_db()
    return run


def test_run_trains_validates_and_saves_configs(alice, training_market, django_capture_on_commit_callbacks,
                                                published):
    run = create(alice, training_market, django_capture_on_commit_callbacks)
    assert run.state == JobState.SUCCEEDED, run.error
    assert run.progress == 100 and run.workers_finished == 2 and len(run.worker_reports) == 2
    assert TrainingTrial.objects.filter(run=run).count() == 12 == run.trials_done
    assert sorted(TrainingTrial.objects.filter(run=run).values_list("number", flat=True)) == list(range(12))
    result = run.result
    assert {"folds", "holdout", "dsr", "pbo", "verdict", "trials", "best", "candidates"} <= set(result)
    assert result["trials"]["count"] == 12 and len(result["folds"]) == 3
    assert {"in_sample", "out_of_sample"} <= set(result["folds"][0])
    assert result["holdout"]["metrics"] is not None
    assert run.verdict["text"] in ("likely overfit", "insufficient evidence", "promising but fragile", "likely robust")
    assert run.verdict["reasons"]
    assert run.best_params == result["best"]["params"]

    configs = list(StrategyConfig.objects.filter(source=Source.TRAINING).order_by("pk"))
    assert [c.pk for c in configs] == result["configs_created"] and len(configs) == len(result["candidates"]) >= 1
    for config, cand in zip(configs, result["candidates"]):
        assert config.provenance == {"training_run": run.pk, "trial": cand["number"]}
        expected = Stage.VALIDATION if cand["verdict"]["code"] == "likely_robust" else Stage.DISCOVERY
        assert config.stage == expected and config.owner == alice and config.parameters == cand["params"]
        assert {"in_sample_value", "out_of_sample", "holdout", "dsr", "pbo", "folds"} <= set(config.metrics["training"])

    types = [m["type"] for _, m in published]
    assert types[0] == "training.run.created" and types[-1] == "training.run.finished"
    trial_events = [(g, m) for g, m in published if m["type"] == "training.trial.finished"]
    assert len(trial_events) == 12
    groups, message = trial_events[-1]
    assert f"topic-training-{run.pk}" in groups and f"user-{alice.pk}" in groups
    assert {"number", "params", "value", "state"} <= set(message["data"]["trial"])
    assert message["data"]["best"]["value"] == max(t.value for t in run.trials.filter(state="complete"))


def test_the_holdout_never_reaches_the_optimiser(alice, training_market, django_capture_on_commit_callbacks):
    run = create(alice, training_market, django_capture_on_commit_callbacks, n_workers=1)
    assert run.state == JobState.SUCCEEDED, run.error
    holdout = run.result["holdout"]
    assert run.holdout_start_index == holdout["start_index"] == 3200
    assert run.holdout_start == ms_dt(T0 + 3200 * MIN) and holdout["start"] == T0 + 3200 * MIN
    ranges = [r for t in run.trials.all() for r in t.bar_ranges]
    assert ranges, "every trial records the bar ranges it read"
    assert max(r["end"] for r in ranges) <= holdout["start_index"]
    assert all(r["read_start"] >= 0 for r in ranges)


def test_range_with_gaps_is_refused_naming_the_gap(alice, gappy_market):
    with pytest.raises(ValidationError) as err:
        services.training_create(owner=alice, **training_kwargs(gappy_market, end=ms_dt(T0 + 1000 * MIN)))
    message = " ".join(err.value.messages)
    assert "1 gap(s)" in message and "(30 bars)" in message and "2023-11-15 04:40" in message
    assert not TrainingRun.objects.exists()


@pytest.mark.parametrize("overrides,field,text", [
    ({"objective": "luck"}, "objective", "Unknown objective"),
    ({"sampler": "magic"}, "sampler", "Unknown sampler"),
    ({"holdout_share": 0.95}, "holdout_share", "hold-out share"),
    ({"end": ms_dt(T0 + 520 * MIN)}, "folds", "bars in the range"),
    ({"scheme": "sideways"}, "scheme", "rolling or anchored"),
    ({"strategy_key": "no_such"}, "strategy_key", "sma_cross"),
    ({"fee": 1.5}, "fee", "fee"),
])
def test_bad_inputs_are_refused_naming_the_field(alice, training_market, overrides, field, text):
    with pytest.raises(ValidationError) as err:
        services.training_create(owner=alice, **training_kwargs(training_market, **overrides))
    assert field in err.value.message_dict and text in " ".join(err.value.message_dict[field])
    assert not TrainingRun.objects.exists()


def test_cancel_a_queued_run_and_a_running_one(alice, training_market, django_capture_on_commit_callbacks):
    queued = services.training_create(owner=alice, **training_kwargs(training_market), enqueue=False)
    services.training_cancel(run=queued, reason="changed my mind")
    queued.refresh_from_db()
    assert queued.state == JobState.CANCELLED and queued.cancel_requested
    with pytest.raises(ValidationError, match="nothing to cancel"):
        services.training_cancel(run=queued)
    assert services.training_execute_worker(queued.pk, "late") is None  # a late worker does nothing

    running = services.training_create(owner=alice, **training_kwargs(training_market, n_workers=1), enqueue=False)
    original = services._record_trial

    def cancel_after_three(run, frozen):
        original(run, frozen)
        if TrainingTrial.objects.filter(run=run).count() == 3:
            services.training_cancel(run=TrainingRun.objects.get(pk=run.pk), reason="enough")

    services._record_trial = cancel_after_three
    try:
        services.training_execute_worker(running.pk, "w0")
    finally:
        services._record_trial = original
    running.refresh_from_db()
    assert running.state == JobState.CANCELLED
    assert running.trials.count() == 3 and running.result["status"] == "cancelled"
    assert not StrategyConfig.objects.exists()


def test_config_from_any_completed_trial(alice, training_market, django_capture_on_commit_callbacks):
    run = create(alice, training_market, django_capture_on_commit_callbacks, n_workers=1, top_n=1)
    trial = run.trials.filter(state="complete").order_by("-number").first()
    config = services.training_create_config_from_trial(run=run, number=trial.number, owner=alice)
    assert config.parameters == trial.params and config.stage == Stage.DISCOVERY
    assert config.provenance == {"training_run": run.pk, "trial": trial.number} and config.source == Source.TRAINING
    assert config.metrics["training"]["in_sample_value"] == pytest.approx(trial.value)
    with pytest.raises(ValidationError, match="no finished trial 999"):
        services.training_create_config_from_trial(run=run, number=999, owner=alice)


@pytest.mark.django_db(transaction=True)
def test_two_parallel_workers_share_the_study_without_lost_or_duplicated_trials(alice, training_market):
    run = services.training_create(owner=alice, **training_kwargs(training_market, n_trials=16), enqueue=False)

    def work(worker_id):
        try:
            services.training_execute_worker(run.pk, worker_id)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    run.refresh_from_db()
    assert run.state == JobState.SUCCEEDED, run.error
    numbers = sorted(run.trials.values_list("number", flat=True))
    assert len(numbers) == len(set(numbers)) == 16 == run.result["trials"]["count"]
    assert run.workers_finished == 2 and {r["stop_reason"] for r in run.worker_reports} == {"budget_reached"}
    assert sum(r["trials_run"] for r in run.worker_reports) == 16


class WorkerDied(BaseException):
    """Stands in for SIGKILL: not an Exception, so nothing in the worker catches and records it."""


def test_a_dead_worker_is_redelivered_and_the_run_completes_without_lost_or_duplicated_trials(
        alice, training_market):
    run = services.training_create(owner=alice, **training_kwargs(training_market, n_workers=2), enqueue=False)
    original = services._record_trial

    def die_after_five(run_, frozen):
        original(run_, frozen)
        if TrainingTrial.objects.filter(run=run_).count() == 5:
            raise WorkerDied

    services._record_trial = die_after_five
    try:
        with pytest.raises(WorkerDied):
            services.training_execute_worker(run.pk, "w0")
    finally:
        services._record_trial = original
    run.refresh_from_db()
    assert run.state == JobState.RUNNING and run.trials.count() == 5 and run.workers_finished == 0

    services.training_execute_worker(run.pk, "w0-redelivered")  # acks_late: the broker hands it out again
    services.training_execute_worker(run.pk, "w1")
    run.refresh_from_db()
    assert run.state == JobState.SUCCEEDED, run.error
    numbers = sorted(run.trials.values_list("number", flat=True))
    assert numbers == list(range(12)) and run.result["trials"]["count"] == 12
    assert set(run.trials.values_list("worker_id", flat=True)) == {"w0", "w0-redelivered"}
