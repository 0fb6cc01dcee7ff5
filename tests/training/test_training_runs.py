"""Training runs end to end: create → eager workers → trials, validation, configs; refusals; cancel."""
from __future__ import annotations

import threading

import pytest
from django.core.exceptions import ValidationError
from django.db import connection

from apps.marketdata import services as md
from apps.marketdata.arrays import CandleArrays
from apps.training import services
from apps.training.models import TrainingRun, TrainingTrial
from apps.strategies.models import Source, Stage, StrategyConfig
from tradepulse.core.jobs import JobState

from . import edge
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
    # 3 fold studies + the final study, 12 trials each.
    assert run.n_studies == 4 and run.trials_budget == 48
    trials = TrainingTrial.objects.filter(run=run)
    assert trials.count() == 48 == run.trials_done + run.trials_failed
    for study in ("fold-0", "fold-1", "fold-2", "final"):
        assert sorted(trials.filter(study=study).values_list("number", flat=True)) == list(range(12))
    assert set(trials.filter(study="fold-1").values_list("fold", flat=True)) == {1}
    assert set(trials.filter(study="final").values_list("fold", flat=True)) == {None}
    result = run.result
    assert result["trials"]["count"] == 48 and len(result["folds"]) == 3
    for fold in result["folds"]:
        # Each fold's parameters come from that fold's own study, never another's.
        own = trials.filter(study=f"fold-{fold['index']}", number=fold["trial"]).get()
        assert own.params == fold["params"] and own.state == "complete"
        assert fold["in_sample"]["metrics"] and fold["out_of_sample"]["metrics"]
    assert result["holdout"]["metrics"] is not None
    assert run.verdict == result["verdict"] and run.verdict["reasons"]
    assert run.best_params == result["best"]["params"]
    assert run.message == f"48 of 48 trials · {run.verdict['text']}"

    configs = list(StrategyConfig.objects.filter(source=Source.TRAINING).order_by("pk"))
    assert [c.pk for c in configs] == result["configs_created"] and len(configs) == len(result["candidates"]) >= 1
    for config, cand in zip(configs, result["candidates"]):
        assert config.provenance == {"training_run": run.pk, "training_study": "final", "trial": cand["number"]}
        assert config.stage == STAGE_FOR[cand["verdict"]["code"]]
        assert config.owner == alice and config.parameters == cand["params"]
        assert {"in_sample_value", "out_of_sample", "holdout", "dsr", "pbo", "folds",
                "walkforward_efficiency"} <= set(config.metrics["training"])

    types = [m["type"] for _, m in published]
    assert types[0] == "training.run.created" and types[-1] == "training.run.finished"
    trial_events = [(g, m) for g, m in published if m["type"] == "training.trial.finished"]
    assert len(trial_events) == 48
    groups, message = trial_events[-1]
    assert f"topic-training-{run.pk}" in groups and f"user-{alice.pk}" in groups
    assert {"number", "study", "fold", "params", "value", "penalty", "state"} <= set(message["data"]["trial"])
    assert message["data"]["trials_budget"] == 48
    measured = run.trials.filter(state="complete", study="final", penalty="")
    assert message["data"]["best"]["value"] == max(t.value for t in measured)


STAGE_FOR = {"likely_robust": Stage.VALIDATION, "promising_but_fragile": Stage.DISCOVERY,
             "likely_overfit": Stage.DISCOVERY, "insufficient_evidence": Stage.DISCOVERY}


def test_no_study_reads_its_out_of_sample_window_and_the_holdout_never_reaches_the_optimiser(
        alice, training_market, django_capture_on_commit_callbacks):
    run = create(alice, training_market, django_capture_on_commit_callbacks, n_workers=1)
    assert run.state == JobState.SUCCEEDED, run.error
    holdout = run.result["holdout"]
    assert run.holdout_start_index == holdout["start_index"] == 3200
    assert run.holdout_start == ms_dt(T0 + 3200 * MIN) and holdout["start"] == T0 + 3200 * MIN
    oos_start = {f"fold-{f['index']}": f["out_of_sample"]["start_index"] for f in run.result["folds"]}
    for trial in run.trials.all():
        if trial.pruned_reason.startswith("invalid parameters"):
            assert trial.bar_ranges == []  # rejected before reading anything
            continue
        assert trial.bar_ranges, "every trial records the bar ranges it read"
        end = max(r["end"] for r in trial.bar_ranges)
        assert all(r["read_start"] >= 0 for r in trial.bar_ranges)
        assert end <= holdout["start_index"]
        if trial.fold is not None:
            assert end <= oos_start[trial.study]


def test_a_range_with_gaps_trains_when_allowed_and_lists_the_gaps(alice, gappy_market,
                                                                 django_capture_on_commit_callbacks):
    run = create(alice, gappy_market, django_capture_on_commit_callbacks, end=ms_dt(T0 + 1000 * MIN), folds=1,
                 n_trials=4, n_workers=1, allow_gaps=True)
    assert run.state == JobState.SUCCEEDED, run.error
    assert run.allow_gaps and run.gaps == [{"start": T0 + 400 * MIN, "end": T0 + 430 * MIN, "bars": 30}]
    assert run.result["gaps"] == run.gaps


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

    def cancel_after_three(run, study, frozen):
        original(run, study, frozen)
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
    assert set(running.trials.values_list("study", flat=True)) == {"fold-0"}
    assert running.message.startswith("Cancelled · 3 of 48 trials")
    assert not StrategyConfig.objects.exists()


def test_config_from_any_completed_trial_and_no_duplicate_of_a_saved_one(alice, training_market,
                                                                         django_capture_on_commit_callbacks):
    run = create(alice, training_market, django_capture_on_commit_callbacks, n_workers=1, top_n=1)
    saved = run.result["candidates"][0]
    trial = run.trials.filter(state="complete", study="final").exclude(number=saved["number"]) \
        .order_by("-number").first()
    config, created = services.training_create_config_from_trial(run=run, number=trial.number, owner=alice)
    assert created and config.parameters == trial.params and config.stage == Stage.DISCOVERY
    assert config.provenance == {"training_run": run.pk, "training_study": "final", "trial": trial.number}
    assert config.source == Source.TRAINING
    assert config.metrics["training"]["in_sample_value"] == pytest.approx(trial.value)
    fold_trial = run.trials.filter(state="complete", study="fold-2").first()
    from_fold, created = services.training_create_config_from_trial(run=run, number=fold_trial.number,
                                                                    study="fold-2", owner=alice)
    assert created and from_fold.parameters == fold_trial.params
    assert from_fold.provenance == {"training_run": run.pk, "training_study": "fold-2", "trial": fold_trial.number}

    # The top candidate was saved when the run finished; asking again returns that config.
    count = StrategyConfig.objects.count()
    again, created = services.training_create_config_from_trial(run=run, number=saved["number"], owner=alice)
    assert not created and again.pk == run.result["configs_created"][0]
    assert services.training_create_config_from_trial(run=run, number=trial.number, owner=alice) == (config, False)
    assert StrategyConfig.objects.count() == count
    with pytest.raises(ValidationError, match="no finished trial 999"):
        services.training_create_config_from_trial(run=run, number=999, owner=alice)


@pytest.mark.django_db(transaction=True)
def test_two_parallel_workers_share_the_study_without_lost_or_duplicated_trials(alice, training_market):
    run = services.training_create(owner=alice, **training_kwargs(training_market, n_trials=8), enqueue=False)

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
    for study in ("fold-0", "fold-1", "fold-2", "final"):
        assert sorted(run.trials.filter(study=study).values_list("number", flat=True)) == list(range(8))
    assert run.result["trials"]["count"] == 32
    assert run.workers_finished == 2 and {r["stop_reason"] for r in run.worker_reports} == {"budget_reached"}
    assert sum(r["trials_run"] for r in run.worker_reports) == 32


class WorkerDied(BaseException):
    """Stands in for SIGKILL: not an Exception, so nothing in the worker catches and records it."""


def test_a_dead_worker_is_redelivered_and_the_run_completes_without_lost_or_duplicated_trials(
        alice, training_market):
    run = services.training_create(owner=alice, **training_kwargs(training_market, n_workers=2), enqueue=False)
    original = services._record_trial

    def die_after_five(run_, study, frozen):
        original(run_, study, frozen)
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
    for study in ("fold-0", "fold-1", "fold-2", "final"):
        assert sorted(run.trials.filter(study=study).values_list("number", flat=True)) == list(range(12))
    assert run.result["trials"]["count"] == 48
    assert set(run.trials.values_list("worker_id", flat=True)) == {"w0", "w0-redelivered"}


@pytest.fixture
def edge_market(db):
    """A market whose candles carry a real, built-in edge (tests/training/edge.py)."""
    with edge.registered():
        exchange = md.exchange_get_or_create(name="Test files")
        market = md.market_get_or_create_for_import(exchange=exchange, symbol="EDGE/USD", amount_step="0.000001")
        time, opens, high, low, close, volume = edge.edge_arrays(EDGE_BARS)
        md.candles_ingest(market=market, timeframe="1m", source="test",
                          rows=CandleArrays(time, opens, high, low, close, volume, timeframe="1m"))
        yield market


EDGE_BARS = 20_000


def test_a_real_edge_is_judged_likely_robust_and_its_configs_enter_validation(
        alice, edge_market, django_capture_on_commit_callbacks):
    run = create(alice, edge_market, django_capture_on_commit_callbacks, strategy_key="volume_tells_test",
                 start=ms_dt(edge.T0), end=ms_dt(edge.T0 + EDGE_BARS * edge.MIN), n_trials=20, min_trades=10,
                 n_workers=1, top_n=2)
    assert run.state == JobState.SUCCEEDED, run.error
    assert run.verdict["text"] == "likely robust", run.verdict["reasons"]
    # The known answer: buy after a spike, sell one bar later.
    assert run.best_params["hold"] == 1 and all(f["params"]["hold"] == 1 for f in run.result["folds"])
    assert run.result["out_of_sample"]["positive_folds"] == 3
    configs = StrategyConfig.objects.filter(pk__in=run.result["configs_created"])
    assert configs.count() == len(run.result["candidates"]) == 2
    assert {c.stage for c in configs} == {Stage.VALIDATION}


def test_a_test_deletes_only_the_optuna_journals_it_created(alice, training_market):
    """The cause of the old order-dependent flake: a test's teardown deleted every journal in the
    shared Redis database, including those of runs still training in other processes."""
    from quant.optimisation.runner import create_study, load_study
    from quant.optimisation.storage import delete_storage

    from .training_fixtures import own_journals_deleted

    foreign = services.optuna_storage_url("another-process-run")  # made outside: someone else's
    create_study(foreign, "another-process-run.final", sampler="random", seed=1, strategy_key="sma_cross")
    try:
        with own_journals_deleted() as made:
            run = services.training_create(owner=alice, **training_kwargs(training_market), enqueue=False)
            own = services.optuna_storage_url(run.study_name)
            assert made == {own}
            assert load_study(own, f"{run.study_name}.final").study_name == f"{run.study_name}.final"
        with pytest.raises(ValueError, match="no study named"):
            load_study(own, f"{run.study_name}.final")
        assert load_study(foreign, "another-process-run.final").study_name == "another-process-run.final"
    finally:
        delete_storage(foreign)
