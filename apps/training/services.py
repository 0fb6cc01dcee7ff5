"""Training runs: create (validate, store, create the optuna studies, queue the workers), the
worker body (claim or join, run trials of every study, record each, validate when the last
worker finishes), cancel, and configs from trials. The API, the admin, the tasks and the
`train` command call these functions; the optimisation and the statistics are the pure core
in `quant/optimisation/` (walk-forward: one study per fold plus a final study, see its README).
"""
from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from optuna.trial import TrialState

from tradepulse.core.permissions import grant_owner
from apps.accounts import quotas
from apps.accounts.models import QuotaKey
from apps.audit.services import audit_record
from apps.marketdata.selectors import candle_count
from quant.strategies import Bars, get_strategy
from apps.strategies.execution import EXECUTION_FIELDS
from apps.strategies.models import Source, Stage, StrategyConfig
from quant.strategies.provenance import code_version as current_code_version
from apps.strategies.services import config_create
from tradepulse.core import events, jobrunner
from tradepulse.core.jobs import JobState

from .evidence import candidate_evidence
from .models import Scheme, TrainingRun, TrainingTrial
from .options import DEFAULTS
from apps.backtests.services import ENGINE_FIELDS, BacktestSpec, check_data, load_bars, range_gaps
from quant.optimisation import (FINAL, OBJECTIVES, SAMPLERS, create_study, plan_training, run_studies, study_names,
                                trial_record, validate_training)
from quant.optimisation.pipeline import StudyObjectives, fold_of
from quant.optimisation.storage import dispose_storage, journal_file_url, journal_redis_url, make_storage
from .serializers import TrainingRunSerializer

log = logging.getLogger(__name__)

ROBUST = "likely_robust"
# Share of the progress bar given to the trials; validation takes the rest.
TRIALS_SHARE = 90.0


# --- Storage ------------------------------------------------------------------------------------
def optuna_storage_url(study_name: str) -> str:
    """Where a run's optuna studies live: one journal per run (quant/optimisation/storage.py).

    Production (REDIS_URL set): a Redis list on the platform's Redis, shared by every worker
    on every machine. Embedded mode: a file `<VAR_DIR>/optuna/<study name>.log`. Built from
    the settings each time (never stored: a Redis URL can carry a password).
    """
    if settings.REDIS_URL:
        return journal_redis_url(settings.REDIS_URL, f"tradepulse:optuna:{study_name}")
    folder = settings.VAR_DIR / "optuna"
    folder.mkdir(exist_ok=True)
    # A symbol's slash ("BTC/USDT") must not make a path of the study name.
    return journal_file_url((folder / f"{study_name.replace('/', '-')}.log").resolve())


# --- Plan: hold-out, folds, final window --------------------------------------------------------
def _plan(strategy_key: str, timeframe: str, n_or_bars, *, holdout_share: float, folds: int, scheme: str):
    """The walk-forward plan for `n_or_bars`; ValueError if impossible."""
    return plan_training(n_or_bars, strategy_key=strategy_key, timeframe=timeframe, holdout_share=holdout_share,
                         folds=folds, scheme=scheme)


def _ms(dt: datetime | None) -> int | None:
    return None if dt is None else int(dt.timestamp() * 1000)


def _dt(ms: int | None) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, tz=UTC)


def training_spec(*, strategy_key: str, timeframe: str, start_ms=None, end_ms=None, allow_gaps: bool = False,
                  **engine) -> BacktestSpec:
    """The strategy/engine part of a run validated like a backtest's (default parameters), with
    the same gap policy: a range with gaps is refused unless `allow_gaps`."""
    return BacktestSpec.build(strategy_key=strategy_key, parameters={}, timeframe=timeframe, start_ms=start_ms,
                              end_ms=end_ms, allow_gaps=allow_gaps, **engine)


def check_training_options(*, objective: str, sampler: str, folds: int, scheme: str, holdout_share: float,
                           n_trials: int, n_workers: int, top_n: int, min_trades: int) -> None:
    """Refuse options the core would refuse, naming the field."""
    errors = {}
    if objective not in OBJECTIVES:
        errors["objective"] = f"Unknown objective {objective!r}; choose one of {', '.join(OBJECTIVES)}."
    if sampler not in SAMPLERS:
        errors["sampler"] = f"Unknown sampler {sampler!r}; choose one of {', '.join(SAMPLERS)}."
    if scheme not in Scheme.values:
        errors["scheme"] = f"Unknown walk-forward scheme {scheme!r}; choose rolling or anchored."
    if not isinstance(folds, int) or not 1 <= folds <= 50:
        errors["folds"] = f"Folds must be a whole number from 1 to 50, got {folds!r}."
    if isinstance(holdout_share, bool) or not isinstance(holdout_share, (int, float)) or not 0 < holdout_share < 0.9:
        errors["holdout_share"] = (f"The hold-out share must be a fraction above 0 and below 0.9 "
                                   f"(0.2 = the last 20 % of the period), got {holdout_share!r}.")
    for name, value in (("n_trials", n_trials), ("n_workers", n_workers), ("top_n", top_n)):
        if not isinstance(value, int) or value < 1:
            errors[name] = f"{name} must be a positive whole number, got {value!r}."
    if not isinstance(min_trades, int) or min_trades < 0:
        errors["min_trades"] = f"min_trades must be a whole number >= 0, got {min_trades!r}."
    if errors:
        raise ValidationError(errors)


def check_training_quotas(*, owner, n_trials: int, n_workers: int, folds: int, runs: int = 1) -> None:
    """Refuse a request beyond the owner's limits (trials per study, workers, folds, training runs
    queued or running at once), naming the limit, its value and where it comes from."""
    for key, value in ((QuotaKey.TRAINING_TRIALS, n_trials), (QuotaKey.TRAINING_WORKERS, n_workers),
                       (QuotaKey.TRAINING_FOLDS, folds)):
        if isinstance(value, int):  # a wrong type is check_training_options' to name
            quotas.quota_check(user=owner, key=key, requested=value)
    quotas.quota_check_concurrent(user=owner, key=QuotaKey.TRAINING_CONCURRENT, adding=runs)


# --- Create -------------------------------------------------------------------------------------
@transaction.atomic
def training_create(*, owner, market, timeframe: str, start: datetime, end: datetime, strategy_key: str,
                    name: str = "", objective: str = DEFAULTS.objective, min_trades: int = DEFAULTS.min_trades,
                    sampler: str = DEFAULTS.sampler, n_trials: int = DEFAULTS.n_trials,
                    timeout_s: float | None = DEFAULTS.timeout_s, folds: int = DEFAULTS.folds,
                    scheme: str = DEFAULTS.scheme, holdout_share: float = DEFAULTS.holdout_share,
                    seed: int | None = DEFAULTS.seed, n_workers: int = DEFAULTS.n_workers, top_n: int = DEFAULTS.top_n,
                    enqueue: bool = True,
                    batch: str = "", allow_gaps: bool = False, **engine) -> TrainingRun:
    """Validate, store a TrainingRun, create its optuna studies and queue `n_workers` tasks.

    `n_trials` is the budget of EACH study: one per walk-forward fold and one on the whole
    optimisation range, so the run tries `n_trials × (folds + 1)` parameter sets.
    Refuses (ValidationError naming the field) unknown strategies, bad costs, unknown
    objective/sampler/scheme, a hold-out share outside (0, 0.9), folds that do not fit the
    range's bars, an empty range, and a range with gaps (naming them) unless `allow_gaps`
    (then the gaps are listed on the run and its result). The studies are created here,
    once; the workers only load them. The owner's quotas bound trials, workers, folds and
    training runs queued or running at once (apps/accounts/quotas.py).
    """
    check_training_quotas(owner=owner, n_trials=n_trials, n_workers=n_workers, folds=folds)
    spec = _validated(market=market, timeframe=timeframe, start=start, end=end, strategy_key=strategy_key,
                      objective=objective, min_trades=min_trades, sampler=sampler, folds=folds, scheme=scheme,
                      holdout_share=holdout_share, n_trials=n_trials, n_workers=n_workers, top_n=top_n,
                      allow_gaps=allow_gaps, **engine)
    run = TrainingRun(owner=owner, market=market, timeframe=timeframe, start=start, end=end,
                      strategy_key=spec.strategy_key, objective=objective, min_trades=min_trades, sampler=sampler,
                      n_trials=n_trials, timeout_s=timeout_s, folds=folds, scheme=scheme,
                      holdout_share=holdout_share, seed=seed, n_workers=n_workers, top_n=top_n,
                      name=name or f"train {spec.strategy_key} {market.symbol} {timeframe}", batch=batch,
                      code_version=current_code_version(spec.strategy_key),
                      allow_gaps=allow_gaps, gaps=range_gaps(market, spec) if allow_gaps else [],
                      **{f: getattr(spec.engine, f) for f in ENGINE_FIELDS})
    run.full_clean()
    run.save()
    run.study_name = f"run-{run.pk}-{run.strategy_key}-{market.symbol}-{timeframe}-{uuid.uuid4().hex[:8]}"
    run.save(update_fields=["study_name"])
    try:
        _create_studies(run)
    except ValueError as exc:
        raise ValidationError({"sampler": str(exc)}) from None
    grant_owner(run)
    audit_record("training.run.created", target=run,
                 metadata={"strategy": run.strategy_key, "market": market.symbol, "timeframe": timeframe,
                           "start": start, "end": end, "objective": objective, "sampler": sampler,
                           "n_trials": n_trials, "folds": folds, "holdout_share": holdout_share,
                           "n_workers": n_workers, "study": run.study_name, "allow_gaps": allow_gaps,
                           "gaps": len(run.gaps)})
    if enqueue:
        transaction.on_commit(lambda: jobrunner.enqueue(JOB, run.pk))
    _publish(run, "training.run.created")
    return run


def _send_workers(run_id: int) -> None:
    """Queue one task per worker of the run (queue `training`): they share its studies."""
    n_workers = TrainingRun.objects.filter(pk=run_id).values_list("n_workers", flat=True).first() or 0
    task = jobrunner.celery_app.tasks[TASK]
    for i in range(n_workers):
        task.delay(run_id, f"run-{run_id}-w{i}")


def _create_studies(run: TrainingRun) -> None:
    """Every study of the run (one per fold, the final one), in its own journal."""
    url = optuna_storage_url(run.study_name)
    storage = make_storage(url)
    try:
        for name in study_names(run.study_name, run.folds).values():
            create_study(url, name, sampler=run.sampler, seed=run.seed, strategy_key=run.strategy_key,
                         storage=storage)
    finally:
        dispose_storage(storage)


def _validated(*, market, timeframe, start, end, strategy_key, objective, min_trades, sampler, folds, scheme,
               holdout_share, n_trials, n_workers, top_n, allow_gaps=False, **engine):
    """Every check a run must pass before anything is stored; returns the backtest spec."""
    if start is None or end is None:
        raise ValidationError({"start": "A training run needs a start and an end."})
    check_training_options(objective=objective, sampler=sampler, folds=folds, scheme=scheme,
                           holdout_share=holdout_share, n_trials=n_trials, n_workers=n_workers, top_n=top_n,
                           min_trades=min_trades)
    spec = training_spec(strategy_key=strategy_key, timeframe=timeframe, start_ms=_ms(start), end_ms=_ms(end),
                         allow_gaps=allow_gaps, market=market, **engine)
    total = candle_count(market, timeframe, spec.start_ms, spec.end_ms)
    check_data(spec, total, range_gaps(market, spec))
    try:
        _plan(strategy_key, timeframe, total, holdout_share=holdout_share, folds=folds, scheme=scheme)
    except ValueError as exc:
        raise ValidationError({"folds": f"{exc} ({total} bars in the range). Pick a longer range, fewer folds "
                                        "or a smaller hold-out."}) from None
    return spec


MAX_BATCH = 50


@transaction.atomic
def training_create_batch(*, owner, strategy_keys: list[str], series: list[tuple], start: datetime, end: datetime,
                          name: str = "", **options) -> list[TrainingRun]:
    """One run per strategy × (market, timeframe) series, sharing a batch id. All or nothing:
    every combination is checked first, and the refusal names each combination that fails."""
    combos = [(key, market, tf) for key in dict.fromkeys(strategy_keys) for market, tf in dict.fromkeys(series)]
    if not combos:
        raise ValidationError({"strategy_keys": "Choose at least one strategy and one market and timeframe."})
    if len(combos) > MAX_BATCH:
        raise ValidationError({"strategy_keys": f"{len(combos)} combinations is more than {MAX_BATCH} at once; "
                                                "split the request."})
    checks = {**_OPTION_DEFAULTS, **{k: v for k, v in options.items() if k not in _RUN_ONLY}}
    check_training_quotas(owner=owner, n_trials=checks["n_trials"], n_workers=checks["n_workers"],
                          folds=checks["folds"], runs=len(combos))
    problems = []
    for key, market, tf in combos:
        try:
            _validated(market=market, timeframe=tf, start=start, end=end, strategy_key=key, **checks)
        except ValidationError as exc:
            problems.append(f"{key} on {market.symbol} {tf}: {'; '.join(exc.messages)}")
    if problems:
        raise ValidationError({"combinations": problems})
    batch = uuid.uuid4().hex
    return [training_create(owner=owner, market=market, timeframe=tf, start=start, end=end, strategy_key=key,
                            name=f"{name} {key} {market.symbol} {tf}".strip() if name else "", batch=batch, **options)
            for key, market, tf in combos]


# Options a batch is validated with when omitted (the run-only ones are not checked up front).
_RUN_ONLY = {"timeout_s", "seed", "enqueue"}
_OPTION_DEFAULTS = {k: v for k, v in DEFAULTS.as_dict().items() if k not in _RUN_ONLY}


# --- Worker -------------------------------------------------------------------------------------
def _spec_for_run(run: TrainingRun) -> BacktestSpec:
    return training_spec(strategy_key=run.strategy_key, timeframe=run.timeframe, start_ms=_ms(run.start),
                         end_ms=_ms(run.end), allow_gaps=run.allow_gaps,
                         **{f: getattr(run, f) for f in ENGINE_FIELDS})


def _cancel_requested(run_id: int) -> bool:
    return TrainingRun.objects.filter(pk=run_id).filter(Q(cancel_requested=True) | ~Q(state=JobState.RUNNING)).exists()


def _record_trial(run: TrainingRun, study: str, frozen) -> None:
    """Store one finished trial of one of the run's studies, bump the counters and the final
    study's best-so-far (measured values only: a penalty is never a best), publish the event."""
    rec = {**trial_record(frozen, study=study), "fold": fold_of(study)}
    TrainingTrial.objects.update_or_create(run=run, study=study, number=rec["number"], defaults={
        "fold": rec["fold"], "state": rec["state"], "params": rec["params"], "value": rec["value"],
        "penalty": (rec["penalty"] or "")[:200], "windows": rec["windows"],
        "bar_ranges": frozen.user_attrs.get("bar_ranges", []), "pruned_reason": (rec["pruned_reason"] or "")[:500],
        "worker_id": rec["worker_id"] or "", "retried_from": rec["retried_from"],
        "started_at": _dt(rec["started_at"]), "completed_at": _dt(rec["completed_at"]),
        "duration_s": rec["duration_s"]})
    counter = {TrialState.COMPLETE: "trials_complete", TrialState.PRUNED: "trials_pruned"}.get(
        frozen.state, "trials_failed")
    TrainingRun.objects.filter(pk=run.pk).update(**{counter: F(counter) + 1}, heartbeat_at=timezone.now())
    if study == FINAL and rec["state"] == "complete" and rec["value"] is not None and not rec["penalty"]:
        TrainingRun.objects.filter(pk=run.pk).filter(Q(best_value__isnull=True) | Q(best_value__lt=rec["value"])) \
            .update(best_value=rec["value"], best_number=rec["number"], best_params=rec["params"])
    run.refresh_from_db(fields=["trials_complete", "trials_pruned", "trials_failed", "best_value", "best_number",
                                "best_params"])
    progress = round(TRIALS_SHARE * min(run.trials_done / max(run.trials_budget, 1), 1.0), 1)
    message = run.trials_message
    TrainingRun.objects.filter(pk=run.pk).update(progress=progress, message=message)
    run.progress, run.message = progress, message
    best = None if run.best_number is None else {"number": run.best_number, "study": FINAL,
                                                 "value": run.best_value, "params": run.best_params}
    events.publish_for(run, "training.trial.finished",
                       {"run": run.pk, "trial": rec, "best": best, "progress": progress, "n_trials": run.n_trials,
                        "trials_budget": run.trials_budget, "trials_done": run.trials_done,
                        "trials_complete": run.trials_complete, "trials_pruned": run.trials_pruned,
                        "trials_failed": run.trials_failed, "message": message})


def training_execute_worker(run_id: int, worker_id: str) -> TrainingRun | None:
    """The task body (and the `train` command's, inline). The first worker claims the run through
    the job runner (QUEUED → RUNNING), later ones join it; each keeps the run's heartbeat fresh
    while it works, as the person who created the run.

    Loads the run's candles once, hands only the optimisation range to the optimiser and runs
    trials of every study of the run (each fold's, then the final one) until each study's
    budget is reached, the time budget passes, the run is cancelled or this process stops. The
    last worker to finish (decided under a row lock) validates and finishes the run. A failure
    fails the run through the job runner's error map; a stop of this process ends it as
    interrupted (retry resumes it: finished trials stay in its studies). Returns None when there
    was nothing to do.
    """
    run = TrainingRun.objects.select_related("market__exchange", "owner").filter(pk=run_id).first()
    if run is None:
        return None
    holder = jobrunner.worker_id()
    if run.claim(worker=holder, dead_holder=run.worker if jobrunner.holder_died_here(run.worker) else None):
        jobrunner.publish(JOB, run, "started")
    else:
        run.refresh_from_db()  # another worker may have claimed it since we read it: join
        if run.state != JobState.RUNNING:
            return None  # finished or cancelled already: a late or redelivered task
    with jobrunner.acting_for(JOB, run), jobrunner.heartbeat(run):
        return _work(run, worker_id)


def _work(run: TrainingRun, worker_id: str) -> TrainingRun:
    try:
        spec = _spec_for_run(run)
        bars = load_bars(run.market, spec)
        check_data(spec, len(bars), range_gaps(run.market, spec))  # what was checked at creation may be gone
        plan = _plan(run.strategy_key, run.timeframe, bars, holdout_share=run.holdout_share, folds=run.folds,
                     scheme=run.scheme)
        if run.holdout_start_index is None:
            TrainingRun.objects.filter(pk=run.pk).update(holdout_start=_dt(plan.holdout.start_ms),
                                                         holdout_start_index=plan.holdout.start)
        # The optimiser's objectives hold the optimisation bars only: no hold-out bar in memory.
        objectives = StudyObjectives(bars[:plan.optimise.end], run.strategy_key, spec.engine, run.objective,
                                     run.min_trades, plan.study_windows())
        names = study_names(run.study_name, plan)
        keys = {name: key for key, name in names.items()}
        report = run_studies(optuna_storage_url(run.study_name), objectives.tasks(names),
                             n_trials_total=run.n_trials, timeout_s=run.timeout_s, worker_id=worker_id,
                             should_stop=lambda: _should_stop(run.pk),
                             on_trial_finished=lambda name, frozen: _record_trial(run, keys[name], frozen))
    except Exception as exc:  # noqa: BLE001 - classified for the user, logged with traceback for us
        jobrunner.fail_job(JOB, run, exc)
        run.refresh_from_db()
        return run
    if jobrunner.stopping():
        return training_interrupt(run=run)
    with transaction.atomic():
        locked = TrainingRun.objects.select_for_update().get(pk=run.pk)
        locked.worker_reports = [*locked.worker_reports, report.to_dict()]
        locked.workers_finished += 1
        last = (locked.workers_finished >= locked.n_workers and locked.state == JobState.RUNNING
                and locked.validation_started_at is None)
        if last:
            locked.validation_started_at = timezone.now()
        locked.save(update_fields=["worker_reports", "workers_finished", "validation_started_at", "updated_at"])
    if not last:
        return locked
    run.refresh_from_db()
    try:
        _finalise(run, bars, plan)
    except Exception as exc:  # noqa: BLE001
        jobrunner.fail_job(JOB, run, exc)
    run.refresh_from_db()
    return run


def _should_stop(run_id: int) -> bool:
    """Between trials: cancelled, no longer running (failed, interrupted), or this process stopping."""
    return jobrunner.stopping() or _cancel_requested(run_id)


def training_interrupt(*, run: TrainingRun) -> TrainingRun:
    """The process running `run` is stopping (Ctrl-C, SIGTERM): a running run ends as interrupted,
    saying how far it got; a retry resumes its studies. Audited and published by the job runner."""
    run.refresh_from_db()
    jobrunner.finish_job(JOB, run, JobState.FAILED, error_code=jobrunner.INTERRUPTED,
                         error=jobrunner.interrupted_error(run))
    return run


def _finalise(run: TrainingRun, bars, plan) -> None:
    TrainingRun.objects.filter(pk=run.pk).update(progress=TRIALS_SHARE, message="Validating the best candidates")
    run.progress, run.message = TRIALS_SHARE, "Validating the best candidates"
    jobrunner.publish(JOB, run, "progress")
    result = validate_training(
        bars, plan=plan, strategy_key=run.strategy_key, engine_config=_spec_for_run(run).engine,
        objective=run.objective, min_trades=run.min_trades, n_trials=run.n_trials, top_n=run.top_n,
        storage_url=optuna_storage_url(run.study_name), study_name=run.study_name, sampler=run.sampler,
        seed=run.seed, reports=run.worker_reports)
    result["gaps"] = run.gaps
    run.refresh_from_db(fields=["cancel_requested"])
    cancelled = result["status"] == "cancelled" or run.cancel_requested
    trials = result["trials"]
    best = result["best"] or {}
    with transaction.atomic():
        configs = [] if cancelled else training_configs_create(
            owner=run.owner, market=run.market, timeframe=run.timeframe, strategy_key=run.strategy_key,
            result=result, provenance={"training_run": run.pk}, label=f"training {run.pk}",
            code_version=run.code_version, run=run)
        result["configs_created"] = [c.pk for c in configs]
        done = jobrunner.Done(
            message=f"{trials['complete'] + trials['pruned']} of {run.trials_budget} trials · {result['verdict']['text']}",
            fields=dict(result=result, verdict=result["verdict"], best_value=best.get("value", run.best_value),
                        best_number=best.get("number", run.best_number),
                        best_params=best.get("params", run.best_params)),
            audit={"status": result["status"], "verdict": result["verdict"]["code"], "dsr": result["dsr"],
                   "pbo": result["pbo"], "configs": result["configs_created"],
                   "walkforward_efficiency": result["walkforward"]["efficiency"]})
        if jobrunner.finish_job(JOB, run, JobState.CANCELLED if cancelled else JobState.SUCCEEDED,
                                done=done) is None:
            transaction.set_rollback(True)  # failed or interrupted meanwhile: no configs from it


def candidate_metrics(candidate: dict, result: dict) -> dict:
    """Every metric a config created from a validated candidate carries: the candidate's own
    (final window, hold-out, DSR, stability, verdict) and the walk-forward test of the process
    that chose it (chained out-of-sample, per-fold chosen parameters and metrics, WFE)."""
    walkforward = result.get("out_of_sample") or {}
    return {"objective": result["objective"], "in_sample_value": candidate["value"],
            "penalty": candidate.get("penalty"),
            "in_sample": (candidate.get("in_sample") or {}).get("metrics"),
            "out_of_sample": walkforward.get("metrics"),
            "walkforward_efficiency": walkforward.get("walkforward_efficiency"),
            "holdout": (candidate.get("holdout") or {}).get("metrics"),
            "folds": [{"index": f.get("index"), "params": f.get("params"), "in_sample": f["in_sample"].get("metrics"),
                       "out_of_sample": f["out_of_sample"].get("metrics")} for f in result.get("folds") or []],
            "dsr": (candidate.get("dsr") or {}).get("value"), "pbo": result.get("pbo"),
            "stability": candidate.get("stability"), "verdict": candidate.get("verdict")}


def training_configs_create(*, owner, market, timeframe: str, strategy_key: str, result: dict,
                            provenance: dict, label: str, code_version: str | None = None, run=None) -> list:
    """The validated candidates become StrategyConfigs: VALIDATION when their verdict is
    "likely robust" (the graduation policy's bar for leaving discovery), else DISCOVERY. Each
    carries the execution settings the training measured with (`result["engine_config"]`) and
    its out-of-sample and hold-out results as typed evidence (linked to `run` when given)."""
    execution = {k: v for k, v in (result.get("engine_config") or {}).items() if k in EXECUTION_FIELDS}
    code_version = current_code_version(strategy_key) if code_version is None else code_version
    configs = []
    for cand in result.get("candidates") or []:
        code = (cand.get("verdict") or {}).get("code")
        configs.append(config_create(
            owner=owner, strategy_key=strategy_key, market=market, timeframe=timeframe,
            parameters=cand["params"],
            name=f"{strategy_key} {market.symbol} {timeframe} ({label}, trial {cand['number']})",
            source=Source.TRAINING, provenance={**provenance, "training_study": FINAL, "trial": cand["number"]},
            metrics={"training": candidate_metrics(cand, result)},
            stage=Stage.VALIDATION if code == ROBUST else Stage.DISCOVERY, execution=execution,
            code_version=code_version, evidence=candidate_evidence(cand, result, market=market, timeframe=timeframe,
                                                                   run=run, code_version=code_version),
            reason=f"{label}: candidate {cand.get('rank')} ({(cand.get('verdict') or {}).get('text', 'no verdict')})"))
    return configs


# --- Cancel and configs -------------------------------------------------------------------------
@transaction.atomic
def training_cancel(*, run: TrainingRun, reason: str = "") -> TrainingRun:
    """Ask a queued or running training to stop; a queued one is cancelled at once. Workers stop
    between trials; the last one validates what was found and marks the run cancelled. A running
    run whose worker is gone (its process died, or nothing has kept its heartbeat) is cancelled
    at once: nobody is left to see the request."""
    run.request_cancel("training run")
    audit_record("training.run.cancel_requested", target=run, reason=reason)
    if run.state == JobState.RUNNING and (run.is_lost or jobrunner.holder_died_here(run.worker)):
        jobrunner.finish_job(JOB, run, JobState.CANCELLED, reason=reason or "cancelled; its worker was gone")
        return run
    _publish(run, "training.run.cancelled" if run.state == JobState.CANCELLED else "training.run.progress")
    return run


@transaction.atomic
def training_retry(*, run: TrainingRun, reason: str = "") -> TrainingRun:
    """Queue a failed, interrupted or cancelled run again (or a running one whose worker is gone).
    It resumes: the trials its studies finished are kept, the workers run what is left of each
    study's budget, then the last one validates."""
    run = TrainingRun.objects.select_for_update().select_related("market__exchange", "owner").get(pk=run.pk)
    if run.state not in (JobState.FAILED, JobState.CANCELLED) and not run.is_lost:
        raise ValidationError(f"Training run {run.pk} is {run.state}; only a failed, interrupted or cancelled run "
                              "can be retried.")
    if run.state != JobState.RUNNING:  # it becomes active again: it counts against the owner's limit
        quotas.quota_check_concurrent(user=run.owner, key=QuotaKey.TRAINING_CONCURRENT, adding=1)
    before = (run.state, run.error_code)
    run.state, run.cancel_requested, run.error, run.error_code, run.finished_at = JobState.QUEUED, False, "", "", None
    run.worker, run.message = "", f"Queued again to resume: {run.trials_message}"
    for key, value in _requeue_fields(run).items():
        setattr(run, key, value)
    run.save(update_fields=["state", "cancel_requested", "error", "error_code", "finished_at", "worker", "message",
                            "workers_finished", "worker_reports", "validation_started_at", "updated_at"])
    audit_record("training.run.retried", target=run, reason=reason,
                 changes={"state": [before[0], run.state], "error_code": [before[1], ""]},
                 metadata={"trials_done": run.trials_done, "trials_budget": run.trials_budget})
    _publish(run, "training.run.progress")
    transaction.on_commit(lambda: jobrunner.enqueue(JOB, run.pk))
    return run


def _requeue_fields(run: TrainingRun) -> dict:
    """A run queued again starts a fresh set of workers: none has finished, none validates yet."""
    return {"workers_finished": 0, "worker_reports": [], "validation_started_at": None}


def training_create_config_from_trial(*, run: TrainingRun, number: int, owner, study: str = FINAL,
                                      name: str = "") -> tuple[StrategyConfig, bool]:
    """A completed trial's parameters become a DISCOVERY StrategyConfig with provenance.

    `study` is the trial's study ("final" by default, or "fold-<i>"). Returns `(config,
    created)`: a trial already saved as a config of this run (a validated candidate, or an
    earlier click) returns that config, `created` False, instead of a duplicate.
    """
    trial = TrainingTrial.objects.filter(run=run, study=study, number=number).first()
    if trial is None:
        raise ValidationError({"trial": f"Training run {run.pk} has no finished trial {number} in study {study}."})
    if trial.state != "complete":
        raise ValidationError({"trial": f"Trial {number} was {trial.state}; only a completed trial can become a "
                                        "configuration."})
    existing = StrategyConfig.objects.filter(owner=owner, provenance__training_run=run.pk, provenance__trial=number,
                                             provenance__training_study=study).order_by("pk").first()
    if existing is not None:
        return existing, False
    candidate = next((c for c in (run.result or {}).get("candidates") or [] if c["number"] == number), None) \
        if study == FINAL else None
    metrics = candidate_metrics(candidate, run.result) if candidate else {
        "objective": run.objective, "in_sample_value": trial.value, "penalty": trial.penalty or None,
        "windows": trial.windows}
    config = config_create(owner=owner, strategy_key=run.strategy_key, market=run.market, timeframe=run.timeframe,
                           parameters=trial.params,
                           name=name or f"{run.strategy_key} {run.market.symbol} {run.timeframe} "
                                        f"(training {run.pk}, {study} trial {number})",
                           source=Source.TRAINING,
                           provenance={"training_run": run.pk, "training_study": study, "trial": number},
                           metrics={"training": metrics}, stage=Stage.DISCOVERY,
                           execution=run.execution_settings(), code_version=run.code_version,
                           evidence=candidate_evidence(candidate, run.result or {}, market=run.market,
                                                       timeframe=run.timeframe, run=run,
                                                       code_version=run.code_version),
                           reason=f"created from {study} trial {number} of training {run.pk}")
    return config, True


def _publish(run: TrainingRun, event_type: str) -> None:
    """The run's event to everyone who may see it (owner, colleagues it is shared with, operators)."""
    events.publish_for(run, event_type, TrainingRunSerializer(run).data)


def _serialize(run: TrainingRun) -> dict:
    return TrainingRunSerializer(run).data


def _cancelled_message(run: TrainingRun) -> str:
    result = run.result or {}
    trials, verdict = result.get("trials") or {}, (result.get("verdict") or {}).get("text")
    done = trials.get("complete", 0) + trials.get("pruned", 0) if trials else run.trials_done
    return f"Cancelled · {done} of {run.trials_budget} trials" + (f" · {verdict}" if verdict else "")


def _shared_work(job: jobrunner.JobRun):
    raise RuntimeError("training runs are shared by several workers: training_execute_worker runs them")


TASK = "training.run_worker"
JOB = jobrunner.register(jobrunner.JobType(
    name="training.run", model=TrainingRun, work=_shared_work, serialize=_serialize, audit=audit_record,
    task=TASK, send=_send_workers, select_related=("market__exchange", "owner"),
    errors={ValidationError: ("invalid", lambda exc: "; ".join(exc.messages)),
            ValueError: ("invalid", str)},
    # A run whose workers died is queued again: its studies keep every finished trial, so new
    # workers run only what is left, and the last one validates.
    requeue_when_lost=True, requeue_fields=_requeue_fields, cancelled_message=_cancelled_message,
))

