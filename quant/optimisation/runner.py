"""Optuna studies and the worker loop that fills them.

A training run has several studies (one per walk-forward fold, one on the whole optimisation
range; see :mod:`.pipeline`), all in one storage (:mod:`.storage`: a journal in Redis or a
file, or an RDB). Any number of worker processes, on any number of machines, call
:func:`run_studies` (or :func:`run_trials` for one study); each keeps asking for trials until
every study holds ``n_trials_total`` COMPLETE + PRUNED trials.

Guarantees
----------
* **Exact budget.** A worker claims a slot when optuna numbers its trial (numbering follows
  the storage's order: the journal's line order, or a lock on the study row); a trial that
  finds ``n_trials_total`` live trials (complete, pruned, running, waiting) numbered before
  it is discarded before any work (state FAIL, user attr ``discarded``). optuna's
  ``MaxTrialsCallback`` cannot do this: two workers that both see 199 of 200 finished start
  two trials.
* **Worker death.** Each running trial writes a heartbeat every ``heartbeat_interval``
  seconds. A trial whose heartbeat is older than ``grace_period`` is failed by the next
  worker that looks, and re-enqueued ONCE with the same parameters
  (``RetryHeartbeatStaleTrialCallback(max_retry=1)``) as a WAITING trial that the next
  ``ask`` picks up. A worker whose budget is fully claimed first moves on to the run's other
  studies, then waits for the other workers' running trials to finish or go stale, so as
  long as one worker lives, every study completes without losing or double-counting a trial.
* **Reproducibility.** The sampler's random state is re-seeded before every trial from
  ``(seed, trial number)``. With one worker and a fixed seed a study is identical run after
  run (parameters, values, pruning). With parallel workers every trial is still a pure
  function of its number and of the history the sampler saw, but that history depends on
  timing, so the sequence is not reproducible. A restarted worker never replays the
  random sequence of its first life (no duplicate random trials).
* **Cancellation.** ``should_stop()`` is checked between trials; a trial in progress
  finishes and is recorded.

The sampler and pruner are not stored by optuna, so :func:`create_study` records their
configuration in the study's user attributes and every worker rebuilds them from there
(:func:`load_study`): a worker needs only the storage URL and the study name.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import multiprocessing
import os
import queue as queue_module
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import optuna
from optuna.samplers import BaseSampler
from optuna.storages import BaseStorage, fail_stale_trials
from optuna.trial import FrozenTrial, TrialState

from quant.strategies import (BoolParam, CategoricalParam, FloatParam, IntParam,
                                     ParameterError, Strategy, get_strategy)

from .storage import (DEFAULT_GRACE_PERIOD_S, DEFAULT_HEARTBEAT_INTERVAL_S, MAX_RETRIES, dispose_storage,
                      make_storage, quiet, storage_url_from_database_url)

__all__ = [
    "SAMPLERS", "PRUNERS", "MAX_GRID_POINTS", "DEFAULT_HEARTBEAT_INTERVAL_S",
    "DEFAULT_GRACE_PERIOD_S", "MAX_RETRIES", "TPE_STARTUP_TRIALS", "CONFIG_ATTR",
    "storage_url_from_database_url", "make_storage", "grid_space", "build_sampler",
    "build_pruner", "create_study", "load_study", "run_trials", "run_studies", "WorkerReport",
    "study_progress", "trial_record", "run_worker_processes", "TrialSeededSampler",
]

SAMPLERS = ("tpe", "random", "grid", "cmaes")
PRUNERS = ("median", "percentile", "none")

MAX_GRID_POINTS = 10_000
"""Largest grid the grid sampler accepts; beyond it the study would not finish in useful time."""

TPE_STARTUP_TRIALS = 10
"""Random trials before TPE starts modelling (optuna's default)."""

CONFIG_ATTR = "tradepulse"
"""Study user attribute holding the sampler/pruner configuration workers rebuild."""

_PRUNER_STARTUP_TRIALS = 5
_PRUNER_WARMUP_STEPS = 1  # never prune on the first window alone
_PERCENTILE = 25.0
logger = logging.getLogger(__name__)

_PRECHECK_MARGIN = 16  # trials other workers could start between two looks of this one
_LIVE_STATES = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING, TrialState.WAITING)
_DONE_STATES = (TrialState.COMPLETE, TrialState.PRUNED)
_quiet = quiet


def _dispose(study: optuna.Study) -> None:
    """Close the study's pooled connections (before forking worker processes)."""
    dispose_storage(study._storage)


# --------------------------------------------------------------------------- samplers

def _strategy(strategy: str | type[Strategy] | None) -> type[Strategy] | None:
    if strategy is None:
        return None
    return get_strategy(strategy) if isinstance(strategy, str) else strategy


def grid_space(strategy: str | type[Strategy], grid: Mapping[str, list] | None = None) -> dict[str, list]:
    """Grid values per parameter from the strategy's bounds and steps (or ``grid`` overrides).

    Integers: every ``step`` from low to high; floats need a ``step`` (or explicit values);
    categorical: the choices; booleans: both. Raises ValueError naming the sizes when the
    product exceeds MAX_GRID_POINTS, or for a float without a step.
    """
    cls = _strategy(strategy)
    grid = dict(grid or {})
    unknown = sorted(set(grid) - {p.name for p in cls.params})
    if unknown:
        raise ValueError(f"grid names unknown parameter(s) of {cls.key}: {', '.join(unknown)}")
    space: dict[str, list] = {}
    for p in cls.params:
        if p.name in grid:
            try:
                values = [p.validate(v) for v in grid[p.name]]
            except ParameterError as exc:
                raise ValueError(f"grid: {exc}") from None
            if not values:
                raise ValueError(f"grid: {p.name} has no values")
            space[p.name] = list(dict.fromkeys(values))
        elif isinstance(p, IntParam):
            space[p.name] = list(range(p.low, p.high + 1, p.step))
        elif isinstance(p, FloatParam):
            if p.step is None:
                raise ValueError(f"grid search needs a step for float parameter {p.name}; "
                                 f"give its values explicitly, e.g. grid={{'{p.name}': [...]}}")
            count = int(math.floor((p.high - p.low) / p.step + 1e-9)) + 1
            space[p.name] = [float(round(p.low + i * p.step, 12)) for i in range(count)]
        elif isinstance(p, CategoricalParam):
            space[p.name] = list(p.choices)
        elif isinstance(p, BoolParam):
            space[p.name] = [False, True]
    size = math.prod(len(v) for v in space.values())
    if size > MAX_GRID_POINTS:
        sizes = " × ".join(f"{name} {len(v)}" for name, v in space.items())
        raise ValueError(f"grid search over {cls.key} has {size:,} points ({sizes}), above the cap of "
                         f"{MAX_GRID_POINTS:,}; narrow it with explicit grid values or use tpe/random")
    return space


def _check_cmaes(cls: type[Strategy] | None) -> None:
    if cls is not None:
        other = [p.name for p in cls.params if not isinstance(p, (IntParam, FloatParam))]
        if other:
            raise ValueError(f"CMA-ES works on numeric parameters only; {cls.key} has non-numeric "
                             f"{', '.join(other)}: use tpe, random or grid")
    if importlib.util.find_spec("cmaes") is None:  # optional dependency of optuna's CmaEsSampler
        raise ValueError("the cmaes sampler needs the 'cmaes' package, which is not installed; "
                         "use tpe, random or grid")


def _trial_seed(seed: int, number: int) -> int:
    return int(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(number)]).generate_state(1)[0])


def _reseed(sampler: Any, seed: int, depth: int = 0) -> None:
    """Seed every random state a sampler (and its nested samplers) holds."""
    for value in list(vars(sampler).values()):
        if type(value).__name__ == "LazyRandomState":  # optuna's lazily created RandomState
            value.rng.seed(seed)
        elif isinstance(value, np.random.RandomState):
            value.seed(seed)
        elif isinstance(value, BaseSampler) and depth < 3:
            _reseed(value, seed, depth + 1)


class TrialSeededSampler(BaseSampler):
    """Wraps a sampler and re-seeds its random state from ``(seed, trial.number)`` before
    each trial, so trials are reproducible one by one rather than only as a sequence."""

    def __init__(self, inner: BaseSampler, seed: int | None):
        self.inner = inner
        self.seed = seed

    def infer_relative_search_space(self, study, trial):
        return self.inner.infer_relative_search_space(study, trial)

    def sample_relative(self, study, trial, search_space):
        return self.inner.sample_relative(study, trial, search_space)

    def sample_independent(self, study, trial, param_name, param_distribution):
        return self.inner.sample_independent(study, trial, param_name, param_distribution)

    def before_trial(self, study, trial: FrozenTrial) -> None:
        if self.seed is not None:
            _reseed(self.inner, _trial_seed(self.seed, trial.number))
        self.inner.before_trial(study, trial)

    def after_trial(self, study, trial, state, values) -> None:
        self.inner.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self.inner.reseed_rng()


def build_sampler(name: str, *, seed: int | None = None, strategy: str | type[Strategy] | None = None,
                  grid: Mapping[str, list] | None = None) -> BaseSampler:
    """optuna sampler by name ("tpe", "random", "grid", "cmaes"), wrapped in
    :class:`TrialSeededSampler`. "grid" needs ``strategy`` (the grid comes from its params);
    "cmaes" refuses non-numeric parameters and a missing ``cmaes`` package."""
    cls = _strategy(strategy)
    with _quiet():
        if name == "tpe":
            inner = optuna.samplers.TPESampler(seed=seed, n_startup_trials=TPE_STARTUP_TRIALS,
                                               multivariate=True, constant_liar=True)
        elif name == "random":
            inner = optuna.samplers.RandomSampler(seed=seed)
        elif name == "grid":
            if cls is None:
                raise ValueError("the grid sampler needs the strategy to build its grid")
            inner = optuna.samplers.GridSampler(grid_space(cls, grid), seed=seed)
        elif name == "cmaes":
            _check_cmaes(cls)
            inner = optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)
        else:
            raise ValueError(f"unknown sampler {name!r}; choose one of {', '.join(SAMPLERS)}")
    return TrialSeededSampler(inner, seed)


def build_pruner(name: str) -> optuna.pruners.BasePruner:
    """"median" (prune below the median running objective of earlier trials at the same
    fold), "percentile" (only the worst quarter) or "none". Both never prune before 5
    trials finished nor on the first fold alone."""
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=_PRUNER_STARTUP_TRIALS,
                                           n_warmup_steps=_PRUNER_WARMUP_STEPS)
    if name == "percentile":
        return optuna.pruners.PercentilePruner(_PERCENTILE, n_startup_trials=_PRUNER_STARTUP_TRIALS,
                                               n_warmup_steps=_PRUNER_WARMUP_STEPS)
    if name == "none":
        return optuna.pruners.NopPruner()
    raise ValueError(f"unknown pruner {name!r}; choose one of {', '.join(PRUNERS)}")


# --------------------------------------------------------------------------- studies

def create_study(storage_url: str, study_name: str, *, sampler: str = "tpe", seed: int | None = None,
                 direction: str = "maximize", pruner: str = "median", strategy_key: str | None = None,
                 grid: Mapping[str, list] | None = None,
                 heartbeat_interval: int = DEFAULT_HEARTBEAT_INTERVAL_S,
                 grace_period: int = DEFAULT_GRACE_PERIOD_S, load_if_exists: bool = True,
                 storage: BaseStorage | None = None) -> optuna.Study:
    """Create (or, with ``load_if_exists``, reopen) a study.

    ``storage_url``: see :mod:`.storage` (``journal+redis://…?key=…``, ``journal+file:///…``,
    ``sqlite:///…``, ``postgresql+psycopg://…``); ``storage``: an already opened one to reuse.
    The sampler/pruner configuration is stored in the study's user attribute
    ``"tradepulse"``; reopening with a different configuration raises ValueError, as do an
    unknown sampler/pruner/direction, an oversized grid or CMA-ES on non-numeric parameters.
    """
    if direction not in ("maximize", "minimize"):
        raise ValueError(f"direction must be 'maximize' or 'minimize', got {direction!r}")
    if sampler == "grid" and strategy_key is None:
        raise ValueError("the grid sampler needs strategy_key to build its grid")
    config = {"sampler": sampler, "seed": seed, "pruner": pruner, "direction": direction,
              "strategy_key": strategy_key, "grid": {k: list(v) for k, v in (grid or {}).items()} or None}
    built_sampler = build_sampler(sampler, seed=seed, strategy=strategy_key, grid=grid)
    if sampler == "grid":
        config["grid_size"] = len(built_sampler.inner._all_grids)
    storage = storage or make_storage(storage_url, heartbeat_interval=heartbeat_interval,
                                      grace_period=grace_period)
    with _quiet():
        study = optuna.create_study(storage=storage, study_name=study_name, sampler=built_sampler,
                                    pruner=build_pruner(pruner), direction=direction,
                                    load_if_exists=load_if_exists)
    existing = study.user_attrs.get(CONFIG_ATTR)
    if existing is None:
        study.set_user_attr(CONFIG_ATTR, config)
    elif existing != config:
        raise ValueError(f"study {study_name!r} already exists with another configuration: {existing}")
    return study


def load_study(storage_url: str, study_name: str, *, heartbeat_interval: int = DEFAULT_HEARTBEAT_INTERVAL_S,
               grace_period: int = DEFAULT_GRACE_PERIOD_S, storage: BaseStorage | None = None) -> optuna.Study:
    """Open a study made by :func:`create_study`, rebuilding its sampler and pruner
    (``storage``: an already opened storage to reuse; a journal is replayed once per storage)."""
    storage = storage or make_storage(storage_url, heartbeat_interval=heartbeat_interval, grace_period=grace_period)
    try:
        study_id = storage.get_study_id_from_name(study_name)
    except KeyError:
        raise ValueError(f"no study named {study_name!r} in this storage") from None
    config = storage.get_study_user_attrs(study_id).get(CONFIG_ATTR)
    if config is None:
        raise ValueError(f"study {study_name!r} was not created by create_study (no {CONFIG_ATTR!r} attribute)")
    sampler = build_sampler(config["sampler"], seed=config["seed"], strategy=config["strategy_key"],
                            grid=config.get("grid"))
    with _quiet():
        return optuna.load_study(study_name=study_name, storage=storage, sampler=sampler,
                                 pruner=build_pruner(config["pruner"]))


def _budget(study: optuna.Study, n_trials_total: int) -> int:
    config = study.user_attrs.get(CONFIG_ATTR) or {}
    grid_size = config.get("grid_size")
    return min(n_trials_total, grid_size) if grid_size else n_trials_total


class _BudgetTaken(Exception):
    """Raised inside a trial that found the whole budget claimed by earlier trials."""


@dataclass
class WorkerReport:
    """What one :func:`run_trials` (or :func:`run_studies`) call did. ``stop_reason``:
    "budget_reached", "budget_claimed" (others hold the rest, ``wait=False``), "timeout"
    or "cancelled"."""

    worker_id: str
    complete: int = 0
    pruned: int = 0
    failed: int = 0
    discarded: int = 0
    stop_reason: str = ""
    seconds: float = 0.0

    @property
    def trials_run(self) -> int:
        return self.complete + self.pruned + self.failed

    def to_dict(self) -> dict:
        return {**asdict(self), "trials_run": self.trials_run}


def run_trials(storage_url: str, study_name: str, objective_factory: Callable[[], Callable], *,
               n_trials_total: int, timeout_s: float | None = None, worker_id: str = "worker",
               should_stop: Callable[[], bool] | None = None,
               on_trial_finished: Callable[[FrozenTrial], None] | None = None,
               heartbeat_interval: int = DEFAULT_HEARTBEAT_INTERVAL_S,
               grace_period: int = DEFAULT_GRACE_PERIOD_S,
               poll_interval_s: float | None = None, wait: bool = True,
               storage: BaseStorage | None = None) -> WorkerReport:
    """Run trials of an existing study until it holds ``n_trials_total`` COMPLETE + PRUNED
    trials (capped at the grid size for grid search), ``timeout_s`` has passed since this
    call began, or ``should_stop()`` returns True. This is what each Celery worker calls.

    ``objective_factory()`` is called ONCE here and must return ``fn(trial) -> float``;
    load candles and build caches in it (once per worker and study, not per trial).
    ``on_trial_finished(frozen_trial)`` runs after each trial this worker finished (for the
    live feed; discarded trials are not reported). Checks happen between trials: a trial in
    progress always finishes. When the remaining budget is held by other workers' running
    trials, this worker polls every ``poll_interval_s`` (default: half the heartbeat
    interval, at most 2 s) until they finish or go stale (then it runs their retry); with
    ``wait=False`` it returns at once with ``stop_reason = "budget_claimed"`` instead (the
    worker then serves another study first). An exception raised by the objective (other than TrialPruned) fails that trial and
    propagates. Returns a :class:`WorkerReport`.
    """
    if not isinstance(n_trials_total, int) or n_trials_total < 1:
        raise ValueError(f"n_trials_total must be a positive integer, got {n_trials_total!r}")
    started = time.monotonic()
    study = load_study(storage_url, study_name, heartbeat_interval=heartbeat_interval,
                       grace_period=grace_period, storage=storage)
    limit = _budget(study, n_trials_total)
    poll = poll_interval_s if poll_interval_s is not None else max(0.2, min(2.0, heartbeat_interval / 2))
    report = WorkerReport(worker_id)
    objective = objective_factory()

    room = {"left": 0}  # budget left at this worker's last look; skips needless pre-checks

    def wrapped(trial: optuna.Trial) -> float:
        # Trial numbers count every earlier trial, so fewer than ``limit`` of them can hold a
        # slot whenever the number is below the limit: no need to read the study then.
        if trial.number < limit:
            ahead = trial.number
        else:
            ahead = sum(1 for t in study.get_trials(deepcopy=False, states=_LIVE_STATES)
                        if t.number < trial.number)
        room["left"] = limit - ahead - 1
        if ahead >= limit:
            trial.set_user_attr("discarded", f"budget of {limit} trials already claimed; nothing was run")
            raise _BudgetTaken(f"trial {trial.number}: budget of {limit} already claimed")
        trial.set_user_attr("worker_id", worker_id)
        return objective(trial)

    def after(study_: optuna.Study, frozen: FrozenTrial) -> None:
        if "discarded" in frozen.user_attrs:
            report.discarded += 1
            logger.info("%s: trial %d discarded: %s", worker_id, frozen.number, frozen.user_attrs["discarded"])
            return
        if frozen.state == TrialState.COMPLETE:
            report.complete += 1
        elif frozen.state == TrialState.PRUNED:
            report.pruned += 1
        else:
            report.failed += 1
        if on_trial_finished is not None:
            on_trial_finished(frozen)

    try:
        while True:
            if should_stop is not None and should_stop():
                report.stop_reason = "cancelled"
                break
            if timeout_s is not None and time.monotonic() - started >= timeout_s:
                report.stop_reason = "timeout"
                break
            if room["left"] <= _PRECHECK_MARGIN:
                # Near the end: look before creating a trial. (Far from it, the check made
                # inside the trial is enough, and it saves a read of the study per trial.)
                live = study.get_trials(deepcopy=False, states=_LIVE_STATES)
                done = sum(1 for t in live if t.state in _DONE_STATES)
                if done >= limit:
                    report.stop_reason = "budget_reached"
                    break
                waiting = any(t.state == TrialState.WAITING for t in live)
                if len(live) >= limit and not waiting:
                    with _quiet():
                        fail_stale_trials(study)
                    if not wait:
                        report.stop_reason = "budget_claimed"
                        break
                    # The rest of the budget is running elsewhere: wait until it finishes, or
                    # until a dead worker's trial goes stale and is re-enqueued for us.
                    time.sleep(poll)
                    with _quiet():
                        fail_stale_trials(study)
                    continue
                room["left"] = limit - len(live)
            # optuna would log a discarded trial as a failure with a traceback; real failures
            # propagate from here anyway, so its per-trial warnings add nothing.
            with _quiet(optuna.logging.ERROR):
                study.optimize(wrapped, n_trials=1, catch=(_BudgetTaken,), callbacks=[after])
    finally:
        report.seconds = time.monotonic() - started
    return report


# --------------------------------------------------------------------------- reading

def _epoch_ms(dt) -> int | None:
    return int(dt.timestamp() * 1000) if dt is not None else None


def trial_penalty(trial: FrozenTrial) -> str | None:
    """Why a trial's value is a penalty rather than a measured number (the first window's
    reason), or None when every window scored a real value."""
    for record in trial.user_attrs.get("window_metrics") or []:
        if record.get("penalty"):
            return record["penalty"]
    return None


def trial_record(trial: FrozenTrial, *, study: str | None = None) -> dict:
    """JSON-able view of one trial: number, ``study`` (the caller's label, e.g. "fold-2" or
    "final"), state (lower case), params, value, ``penalty`` (why the value is a penalty, not
    a measurement; None otherwise), the per-window records (``windows``), pruned_reason,
    worker_id, retried_from (number of the dead worker's trial this one re-runs), start /
    complete times (epoch ms) and duration."""
    attrs = trial.user_attrs
    value = trial.value if trial.value is not None and math.isfinite(trial.value) else None
    duration = trial.duration.total_seconds() if trial.duration is not None else None
    return {
        "number": trial.number,
        "study": study,
        "state": trial.state.name.lower(),
        "params": dict(trial.params),
        "value": value,
        "penalty": trial_penalty(trial),
        "windows": attrs.get("window_metrics", []),
        "pruned_reason": attrs.get("pruned_reason"),
        "worker_id": attrs.get("worker_id"),
        "retried_from": trial.system_attrs.get("failed_trial"),
        "started_at": _epoch_ms(trial.datetime_start),
        "completed_at": _epoch_ms(trial.datetime_complete),
        "duration_s": duration,
    }


def best_trial(trials: Sequence[FrozenTrial]) -> FrozenTrial | None:
    """The completed trial with the highest value whose value is a measurement, not a
    penalty (ties: the lowest number); if every completed trial was penalised, the highest
    penalty (the optimiser's best guess, flagged by its ``penalty``); None if none completed."""
    complete = [t for t in trials if t.state == TrialState.COMPLETE and t.value is not None
                and math.isfinite(t.value)]
    if not complete:
        return None
    measured = [t for t in complete if trial_penalty(t) is None] or complete
    return min(measured, key=lambda t: (-t.value, t.number))


def study_progress(storage_url: str, study_name: str, *, storage: BaseStorage | None = None) -> dict:
    """Counts by state (``complete``, ``pruned``, ``failed``, ``running``, ``waiting``,
    ``discarded``) and the best trial so far (``best``: number, params, value or None).
    Cheap enough to poll for a progress bar."""
    storage = storage or make_storage(storage_url)
    study = optuna.load_study(study_name=study_name, storage=storage)
    counts = {"complete": 0, "pruned": 0, "failed": 0, "running": 0, "waiting": 0, "discarded": 0}
    best = None
    maximize = study.direction == optuna.study.StudyDirection.MAXIMIZE
    for t in study.get_trials(deepcopy=False):
        if "discarded" in t.user_attrs:
            counts["discarded"] += 1
            continue
        key = {"COMPLETE": "complete", "PRUNED": "pruned", "FAIL": "failed", "RUNNING": "running",
               "WAITING": "waiting"}[t.state.name]
        counts[key] += 1
        if t.state == TrialState.COMPLETE and t.value is not None and (
                best is None or (t.value > best.value if maximize else t.value < best.value)):
            best = t
    return {**counts, "best": None if best is None else
            {"number": best.number, "params": dict(best.params), "value": best.value}}


# --------------------------------------------------------------------------- several studies

StudyTask = tuple[str, Callable[[], Callable]]
"""``(study_name, objective_factory)``: what a worker runs for one study."""


def _add(total: WorkerReport, part: WorkerReport) -> None:
    for name in ("complete", "pruned", "failed", "discarded"):
        setattr(total, name, getattr(total, name) + getattr(part, name))


def run_studies(storage_url: str, studies: Sequence[StudyTask], *, n_trials_total: int,
                timeout_s: float | None = None, worker_id: str = "worker",
                should_stop: Callable[[], bool] | None = None,
                on_trial_finished: Callable[[str, FrozenTrial], None] | None = None,
                heartbeat_interval: int = DEFAULT_HEARTBEAT_INTERVAL_S,
                grace_period: int = DEFAULT_GRACE_PERIOD_S,
                poll_interval_s: float | None = None) -> WorkerReport:
    """One worker's share of several studies (a training run's folds and its final study),
    each to ``n_trials_total`` complete + pruned trials. This is what each Celery task calls.

    The worker runs the studies in order; when the rest of a study's budget is held by other
    workers' running trials it moves on rather than waiting, and only after a pass over every
    study does it wait for those trials (or their stale retries). Several workers thus finish
    a run together instead of idling at the end of each study. One storage is opened per call
    and shared by every study (a journal is replayed once). ``on_trial_finished(study_name,
    frozen_trial)`` runs after each trial this worker finished. ``timeout_s`` counts from this
    call. Returns the summed :class:`WorkerReport` (``stop_reason`` "budget_reached" when every
    study is full).
    """
    started = time.monotonic()
    storage = make_storage(storage_url, heartbeat_interval=heartbeat_interval, grace_period=grace_period)
    total = WorkerReport(worker_id)
    pending = list(studies)
    try:
        for wait in (False, True):
            still = []
            for name, factory in pending:
                left = None if timeout_s is None else max(0.0, timeout_s - (time.monotonic() - started))
                callback = None if on_trial_finished is None else (
                    lambda frozen, _name=name: on_trial_finished(_name, frozen))
                part = run_trials(storage_url, name, factory, n_trials_total=n_trials_total, timeout_s=left,
                                  worker_id=worker_id, should_stop=should_stop, on_trial_finished=callback,
                                  heartbeat_interval=heartbeat_interval, grace_period=grace_period,
                                  poll_interval_s=poll_interval_s, wait=wait, storage=storage)
                _add(total, part)
                if part.stop_reason in ("cancelled", "timeout"):
                    total.stop_reason = part.stop_reason
                    return total
                if part.stop_reason == "budget_claimed":
                    still.append((name, factory))
            pending = still
        total.stop_reason = "budget_reached"
        return total
    finally:
        total.seconds = time.monotonic() - started
        dispose_storage(storage)


# --------------------------------------------------------------------------- processes

def _process_main(storage_url, studies, n_trials_total, timeout_s, worker_id, stop_event,
                  heartbeat_interval, grace_period, queue) -> None:
    try:
        report = run_studies(storage_url, studies, n_trials_total=n_trials_total, timeout_s=timeout_s,
                             worker_id=worker_id, should_stop=stop_event.is_set,
                             heartbeat_interval=heartbeat_interval, grace_period=grace_period)
        queue.put(("ok", report.to_dict()))
    except BaseException as exc:  # report any failure to the parent, then exit non-zero
        queue.put(("error", f"{worker_id}: {type(exc).__name__}: {exc}"))
        raise


def run_worker_processes(storage_url: str, studies: Sequence[StudyTask], *, n_workers: int,
                         n_trials_total: int, timeout_s: float | None = None,
                         should_stop: Callable[[], bool] | None = None,
                         on_trial_finished: Callable[[str, FrozenTrial], None] | None = None,
                         heartbeat_interval: int = DEFAULT_HEARTBEAT_INTERVAL_S,
                         grace_period: int = DEFAULT_GRACE_PERIOD_S) -> list[dict]:
    """Run :func:`run_studies` in ``n_workers`` local processes sharing the studies (the
    in-process stand-in for Celery workers). Processes are forked when this process has a
    single thread (the objective factories and their bars are inherited, not pickled); with
    other threads alive a fork can copy a lock some thread holds and hang the child, so they
    are spawned instead (the factories must then pickle, as pipeline's factories do).
    ``should_stop`` and ``on_trial_finished`` run in this process: cancellation is forwarded
    through an event, finished trials are found by polling the studies. Returns the workers'
    report dicts; raises RuntimeError naming the worker when one failed.
    """
    single_threaded = threading.active_count() == 1
    method = "fork" if single_threaded and "fork" in multiprocessing.get_all_start_methods() else "spawn"
    mp = multiprocessing.get_context(method)
    stop_event = mp.Event()
    queue = mp.Queue()
    procs = [mp.Process(target=_process_main, name=f"training-worker-{i}", daemon=True,
                        args=(storage_url, list(studies), n_trials_total, timeout_s, f"{os.getpid()}-{i}",
                              stop_event, heartbeat_interval, grace_period, queue))
             for i in range(n_workers)]
    for p in procs:
        p.start()
    seen: set[tuple[str, int]] = set()
    storage = make_storage(storage_url, heartbeat_interval=heartbeat_interval,
                           grace_period=grace_period) if on_trial_finished else None
    watched = [load_study(storage_url, name, storage=storage) for name, _ in studies] if storage else []

    def report_finished() -> None:
        for (name, _), study in zip(studies, watched):
            for t in study.get_trials(deepcopy=False, states=_DONE_STATES + (TrialState.FAIL,)):
                if (name, t.number) not in seen:
                    seen.add((name, t.number))
                    if "discarded" not in t.user_attrs:
                        on_trial_finished(name, t)

    results: list[tuple[str, Any]] = []
    try:
        while True:
            if should_stop is not None and not stop_event.is_set() and should_stop():
                stop_event.set()
            report_finished()
            try:
                results.append(queue.get(timeout=0.2))
            except queue_module.Empty:
                if not any(p.is_alive() for p in procs):
                    break
        while True:  # reports put just before a process exited
            try:
                results.append(queue.get(timeout=0.1))
            except queue_module.Empty:
                break
        report_finished()
    finally:
        if storage is not None:
            dispose_storage(storage)
    for p in procs:
        p.join()
    errors = [msg for kind, msg in results if kind == "error"]
    if errors:
        raise RuntimeError("training worker failed: " + "; ".join(errors))
    if len(results) < n_workers:
        codes = [p.exitcode for p in procs]
        raise RuntimeError(f"training worker(s) exited without a report (exit codes {codes})")
    return [msg for kind, msg in results]
