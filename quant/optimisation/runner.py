"""Optuna studies in a relational database, and the worker loop that fills them.

One study per (strategy, market, timeframe) lives in an optuna RDB storage (PostgreSQL in
production, SQLite for tests and the embedded mode). Any number of worker processes, on any
number of machines, call :func:`run_trials` on the same study; each keeps asking for trials
until the study holds ``n_trials_total`` COMPLETE + PRUNED trials.

Guarantees
----------
* **Exact budget.** A worker claims a slot when optuna numbers its trial (numbering is
  serialised by a lock on the study row); a trial that finds ``n_trials_total`` live trials
  (complete, pruned, running, waiting) numbered before it is discarded before any work
  (state FAIL, user attr ``discarded``). optuna's ``MaxTrialsCallback`` cannot do this: two
  workers that both see 199 of 200 finished start two trials.
* **Worker death.** Each running trial writes a heartbeat every ``heartbeat_interval``
  seconds (database clock). A trial whose heartbeat is older than ``grace_period`` is failed
  by the next worker that looks, and re-enqueued ONCE with the same parameters
  (``RetryHeartbeatStaleTrialCallback(max_retry=1)``) as a WAITING trial that the next
  ``ask`` picks up. A worker whose budget is fully claimed waits for the other workers'
  running trials to finish or go stale, so as long as one worker lives, the study completes
  without losing or double-counting a trial.
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
import warnings
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any, Callable, Mapping
from urllib.parse import quote

import numpy as np
import optuna
from optuna.samplers import BaseSampler
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback, fail_stale_trials
from optuna.trial import FrozenTrial, TrialState

from quant.engine import EngineConfig
from quant.strategies import (BoolParam, CategoricalParam, FloatParam, IntParam,
                                     ParameterError, Strategy, get_strategy)

from .objective import DEFAULT_MIN_TRADES, OBJECTIVES, Evaluator, make_objective, max_warmup
from .stability import DEFAULT_RELATIVE_STEP
from .validate import DEFAULT_PBO_PARTITIONS, validate_candidates
from .verdict import Thresholds
from .walkforward import folds as make_folds
from .walkforward import holdout_split

__all__ = [
    "SAMPLERS", "PRUNERS", "MAX_GRID_POINTS", "DEFAULT_HEARTBEAT_INTERVAL_S",
    "DEFAULT_GRACE_PERIOD_S", "MAX_RETRIES", "TPE_STARTUP_TRIALS", "CONFIG_ATTR",
    "storage_url_from_database_url", "make_storage", "grid_space", "build_sampler",
    "build_pruner", "create_study", "load_study", "run_trials", "WorkerReport",
    "study_progress", "trial_record", "run_worker_processes", "TrialSeededSampler",
    "BarsObjectiveFactory", "TrainingResult", "train",
]

SAMPLERS = ("tpe", "random", "grid", "cmaes")
PRUNERS = ("median", "percentile", "none")

MAX_GRID_POINTS = 10_000
"""Largest grid the grid sampler accepts; beyond it the study would not finish in useful time."""

DEFAULT_HEARTBEAT_INTERVAL_S = 10
"""Seconds between heartbeats of a running trial (a tiny UPDATE per trial and interval)."""

DEFAULT_GRACE_PERIOD_S = 60
"""Seconds without a heartbeat after which a running trial counts as dead and is retried.
Must exceed the heartbeat interval by a wide margin (a busy database must not kill live
trials); it is also how long a dead worker's trial waits before another worker redoes it."""

MAX_RETRIES = 1
"""A trial whose worker died is re-run once; a second death (e.g. parameters that exhaust
memory) leaves it FAILED and a fresh trial takes its slot."""

TPE_STARTUP_TRIALS = 10
"""Random trials before TPE starts modelling (optuna's default)."""

CONFIG_ATTR = "tradepulse"
"""Study user attribute holding the sampler/pruner configuration workers rebuild."""

_PRUNER_STARTUP_TRIALS = 5
_PRUNER_WARMUP_STEPS = 1  # never prune on the first fold alone
_PERCENTILE = 25.0
logger = logging.getLogger(__name__)

_PRECHECK_MARGIN = 16  # trials other workers could start between two looks of this one
_LIVE_STATES = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING, TrialState.WAITING)
_DONE_STATES = (TrialState.COMPLETE, TrialState.PRUNED)


@contextmanager
def _quiet(level: int = optuna.logging.WARNING):
    """Silence optuna's experimental-feature warnings (heartbeat, retry, TPE options) and its
    log lines below ``level``; the worker reports what matters itself."""
    logger = optuna.logging.get_logger("optuna")
    previous = logger.level
    logger.setLevel(level)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            warnings.filterwarnings("ignore", category=FutureWarning, module="optuna")
            yield
    finally:
        logger.setLevel(previous)


# --------------------------------------------------------------------------- storage

def storage_url_from_database_url(database_url: str, *, schema: str | None = None) -> str:
    """SQLAlchemy URL for optuna from a Django-style ``DATABASE_URL``.

    ``postgres://`` / ``postgresql://`` become ``postgresql+psycopg://`` (psycopg 3). With
    ``schema``, PostgreSQL connections get ``search_path=<schema>`` so optuna's tables
    (``studies``, ``trials``, ``alembic_version``…) live apart from Django's; the schema
    must exist. ``sqlite:///path`` is returned unchanged.
    """
    url = database_url.strip()
    for prefix in ("postgres://", "postgresql://", "pgsql://"):
        if url.startswith(prefix):
            url = "postgresql+psycopg://" + url[len(prefix):]
            break
    if schema and url.startswith("postgresql"):
        url += ("&" if "?" in url else "?") + "options=" + quote(f"-csearch_path={schema}", safe="")
    return url


def make_storage(storage_url: str, *, heartbeat_interval: int = DEFAULT_HEARTBEAT_INTERVAL_S,
                 grace_period: int = DEFAULT_GRACE_PERIOD_S) -> RDBStorage:
    """optuna RDBStorage with heartbeats and a single retry of trials whose worker died."""
    if not isinstance(heartbeat_interval, int) or heartbeat_interval < 1:
        raise ValueError(f"heartbeat_interval must be a whole number of seconds >= 1, got {heartbeat_interval!r}")
    if not isinstance(grace_period, int) or grace_period <= heartbeat_interval:
        raise ValueError(f"grace_period must be whole seconds above heartbeat_interval ({heartbeat_interval}), "
                         f"got {grace_period!r}")
    if storage_url.startswith("sqlite"):
        engine_kwargs: dict[str, Any] = {"connect_args": {"timeout": 60}}
    else:
        engine_kwargs = {"pool_pre_ping": True}
    with _quiet():
        return RDBStorage(storage_url, engine_kwargs=engine_kwargs, heartbeat_interval=heartbeat_interval,
                          grace_period=grace_period,
                          heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRIES))


def _dispose(study: optuna.Study) -> None:
    """Close the study's pooled connections (before forking worker processes)."""
    storage = study._storage
    backend = getattr(storage, "_backend", storage)
    engine = getattr(backend, "engine", None)
    if engine is not None:
        engine.dispose()


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
                 grace_period: int = DEFAULT_GRACE_PERIOD_S, load_if_exists: bool = True) -> optuna.Study:
    """Create (or, with ``load_if_exists``, reopen) a study in RDB storage.

    ``storage_url``: SQLAlchemy URL, e.g. ``postgresql+psycopg://postgres@127.0.0.1:5432/db``
    or ``sqlite:////abs/path/optuna.db`` (see :func:`storage_url_from_database_url`).
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
    storage = make_storage(storage_url, heartbeat_interval=heartbeat_interval, grace_period=grace_period)
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
               grace_period: int = DEFAULT_GRACE_PERIOD_S) -> optuna.Study:
    """Open a study made by :func:`create_study`, rebuilding its sampler and pruner."""
    storage = make_storage(storage_url, heartbeat_interval=heartbeat_interval, grace_period=grace_period)
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
    """What one :func:`run_trials` call did. ``stop_reason``: "budget_reached",
    "timeout" or "cancelled"."""

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
               poll_interval_s: float | None = None) -> WorkerReport:
    """Run trials of an existing study until it holds ``n_trials_total`` COMPLETE + PRUNED
    trials (capped at the grid size for grid search), ``timeout_s`` has passed since this
    call began, or ``should_stop()`` returns True. This is what each Celery worker calls.

    ``objective_factory()`` is called ONCE here and must return ``fn(trial) -> float``;
    load candles and build caches in it (once per worker and study, not per trial).
    ``on_trial_finished(frozen_trial)`` runs after each trial this worker finished (for the
    live feed; discarded trials are not reported). Checks happen between trials: a trial in
    progress always finishes. When the remaining budget is held by other workers' running
    trials, this worker polls every ``poll_interval_s`` (default: half the heartbeat
    interval, at most 2 s) until they finish or go stale (then it runs their retry).
    An exception raised by the objective (other than TrialPruned) fails that trial and
    propagates. Returns a :class:`WorkerReport`.
    """
    if not isinstance(n_trials_total, int) or n_trials_total < 1:
        raise ValueError(f"n_trials_total must be a positive integer, got {n_trials_total!r}")
    started = time.monotonic()
    study = load_study(storage_url, study_name, heartbeat_interval=heartbeat_interval,
                       grace_period=grace_period)
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


def trial_record(trial: FrozenTrial) -> dict:
    """JSON-able view of one trial: number, state (lower case), params, value, the per-fold
    in-sample records (``folds``), pruned_reason, worker_id, retried_from (number of the
    dead worker's trial this one re-runs), start/complete times (epoch ms) and duration."""
    attrs = trial.user_attrs
    value = trial.value if trial.value is not None and math.isfinite(trial.value) else None
    duration = trial.duration.total_seconds() if trial.duration is not None else None
    return {
        "number": trial.number,
        "state": trial.state.name.lower(),
        "params": dict(trial.params),
        "value": value,
        "folds": attrs.get("fold_metrics", []),
        "pruned_reason": attrs.get("pruned_reason"),
        "worker_id": attrs.get("worker_id"),
        "retried_from": trial.system_attrs.get("failed_trial"),
        "started_at": _epoch_ms(trial.datetime_start),
        "completed_at": _epoch_ms(trial.datetime_complete),
        "duration_s": duration,
    }


def study_progress(storage_url: str, study_name: str) -> dict:
    """Counts by state (``complete``, ``pruned``, ``failed``, ``running``, ``waiting``,
    ``discarded``) and the best trial so far (``best``: number, params, value or None).
    Cheap enough to poll for a progress bar."""
    storage = make_storage(storage_url)
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


# --------------------------------------------------------------------------- processes

def _process_main(storage_url, study_name, factory, n_trials_total, timeout_s, worker_id, stop_event,
                  heartbeat_interval, grace_period, queue) -> None:
    try:
        report = run_trials(storage_url, study_name, factory, n_trials_total=n_trials_total,
                            timeout_s=timeout_s, worker_id=worker_id, should_stop=stop_event.is_set,
                            heartbeat_interval=heartbeat_interval, grace_period=grace_period)
        queue.put(("ok", report.to_dict()))
    except BaseException as exc:  # report any failure to the parent, then exit non-zero
        queue.put(("error", f"{worker_id}: {type(exc).__name__}: {exc}"))
        raise


def run_worker_processes(storage_url: str, study_name: str, objective_factory: Callable[[], Callable], *,
                         n_workers: int, n_trials_total: int, timeout_s: float | None = None,
                         should_stop: Callable[[], bool] | None = None,
                         on_trial_finished: Callable[[FrozenTrial], None] | None = None,
                         heartbeat_interval: int = DEFAULT_HEARTBEAT_INTERVAL_S,
                         grace_period: int = DEFAULT_GRACE_PERIOD_S) -> list[dict]:
    """Run :func:`run_trials` in ``n_workers`` local processes sharing the study (the
    in-process stand-in for Celery workers). Processes are forked when this process has a
    single thread (the objective factory and its bars are inherited, not pickled); with other
    threads alive a fork can copy a lock some thread holds and hang the child, so they are
    spawned instead (the factory must then pickle, as BarsObjectiveFactory does). ``should_stop`` and
    ``on_trial_finished`` run in this process: cancellation is forwarded through an event,
    finished trials are found by polling the study. Returns the workers' report dicts;
    raises RuntimeError naming the worker when one failed.
    """
    single_threaded = threading.active_count() == 1
    method = "fork" if single_threaded and "fork" in multiprocessing.get_all_start_methods() else "spawn"
    mp = multiprocessing.get_context(method)
    stop_event = mp.Event()
    queue = mp.Queue()
    procs = [mp.Process(target=_process_main, name=f"training-worker-{i}", daemon=True,
                        args=(storage_url, study_name, objective_factory, n_trials_total, timeout_s,
                              f"{os.getpid()}-{i}", stop_event, heartbeat_interval, grace_period, queue))
             for i in range(n_workers)]
    for p in procs:
        p.start()
    seen: set[int] = set()
    study = load_study(storage_url, study_name, heartbeat_interval=heartbeat_interval,
                       grace_period=grace_period) if on_trial_finished else None

    def report_finished() -> None:
        if study is None:
            return
        for t in study.get_trials(deepcopy=False, states=_DONE_STATES + (TrialState.FAIL,)):
            if t.number not in seen:
                seen.add(t.number)
                if "discarded" not in t.user_attrs:
                    on_trial_finished(t)

    results: list[tuple[str, Any]] = []
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
    for p in procs:
        p.join()
    errors = [msg for kind, msg in results if kind == "error"]
    if errors:
        raise RuntimeError("training worker failed: " + "; ".join(errors))
    if len(results) < n_workers:
        codes = [p.exitcode for p in procs]
        raise RuntimeError(f"training worker(s) exited without a report (exit codes {codes})")
    return [msg for kind, msg in results]


# --------------------------------------------------------------------------- train()

class BarsObjectiveFactory:
    """Picklable objective factory over bars already in memory (used by :func:`train`).

    Give it the OPTIMISATION-range bars only: the optimiser's processes then never hold a
    hold-out bar. Each call builds one Evaluator (indicator caches) and one objective.
    """

    def __init__(self, bars, strategy_key: str, engine_config, *, objective: str, min_trades: int, folds):
        self.bars = bars
        self.strategy_key = strategy_key
        self.engine_config = engine_config
        self.objective = objective
        self.min_trades = min_trades
        self.folds = list(folds)

    def __call__(self):
        return make_objective(self.bars, self.strategy_key, self.engine_config, objective=self.objective,
                              min_trades=self.min_trades, folds=self.folds)


@dataclass
class TrainingResult:
    """Everything :func:`train` found; ``to_dict()`` is the JSON printed by ``train --json``
    (README.md in this package lists every key)."""

    data: dict

    def to_dict(self) -> dict:
        return self.data

    def __getitem__(self, key: str):
        return self.data[key]


def _no_candidates_verdict(counts: dict) -> dict:
    return {"code": "insufficient_evidence", "text": "insufficient evidence", "reasons": [
        f"No trial completed ({counts['pruned']} pruned, {counts['fail']} failed): nothing to validate."]}


def train(bars, *, strategy_key: str, engine_config: EngineConfig | None = None, objective: str = "sharpe",
          min_trades: int = DEFAULT_MIN_TRADES, sampler: str = "tpe", n_trials: int = 100,
          seed: int | None = None, folds: int = 5, scheme: str = "rolling",
          in_sample_bars: int | None = None, out_of_sample_bars: int | None = None,
          holdout_share: float = 0.2, storage_url: str, study_name: str, timeout_s: float | None = None,
          n_workers: int = 1, top_n: int = 5, pruner: str = "median", grid: Mapping[str, list] | None = None,
          thresholds: Thresholds | None = None, should_stop: Callable[[], bool] | None = None,
          on_trial_finished: Callable[[FrozenTrial], None] | None = None,
          heartbeat_interval: int = DEFAULT_HEARTBEAT_INTERVAL_S, grace_period: int = DEFAULT_GRACE_PERIOD_S,
          pbo_partitions: int = DEFAULT_PBO_PARTITIONS,
          stability_step: float = DEFAULT_RELATIVE_STEP) -> TrainingResult:
    """Optimise ``strategy_key`` on ``bars`` and validate the best candidates, in-process.

    1. Split off the final ``holdout_share`` (never given to the optimiser) and lay ``folds``
       walk-forward folds (``scheme``, optional window lengths) over the rest, reserving
       the largest warm-up the search space needs.
    2. Create (or resume) the study ``study_name`` in ``storage_url`` and run trials until
       ``n_trials`` are complete or pruned, in ``n_workers`` processes (1 = this process),
       within ``timeout_s`` per worker, checking ``should_stop`` between trials.
    3. Validate the ``top_n`` completed trials (distinct parameters, best in-sample first):
       fold metrics, combined OOS, hold-out, stability, deflated Sharpe, plus the study's
       PBO, and give each a verdict.

    Returns a :class:`TrainingResult`. Raises ValueError for impossible configurations
    (unknown strategy/objective/sampler, too few bars for the folds, oversized grid...).
    """
    strategy = get_strategy(strategy_key)
    engine_config = engine_config or EngineConfig()
    if objective not in OBJECTIVES:
        raise ValueError(f"unknown objective {objective!r}; choose one of {', '.join(OBJECTIVES)}")
    if not isinstance(n_workers, int) or n_workers < 1:
        raise ValueError(f"n_workers must be a positive integer, got {n_workers!r}")
    if not isinstance(top_n, int) or top_n < 1:
        raise ValueError(f"top_n must be a positive integer, got {top_n!r}")
    warmup = max_warmup(strategy, bars.timeframe)
    optimise, holdout = holdout_split(bars, holdout_share, warmup_bars=warmup)
    optimise_bars = bars[:optimise.end]
    fold_list = make_folds(optimise_bars, k=folds, scheme=scheme, in_sample_bars=in_sample_bars,
                           out_of_sample_bars=out_of_sample_bars, warmup_bars=warmup)

    started = time.monotonic()
    study = create_study(storage_url, study_name, sampler=sampler, seed=seed, pruner=pruner,
                         strategy_key=strategy_key, grid=grid, heartbeat_interval=heartbeat_interval,
                         grace_period=grace_period)
    factory = BarsObjectiveFactory(optimise_bars, strategy_key, engine_config, objective=objective,
                                   min_trades=min_trades, folds=fold_list)
    if n_workers == 1:
        reports = [run_trials(storage_url, study_name, factory, n_trials_total=n_trials, timeout_s=timeout_s,
                              worker_id=f"{os.getpid()}-0", should_stop=should_stop,
                              on_trial_finished=on_trial_finished, heartbeat_interval=heartbeat_interval,
                              grace_period=grace_period).to_dict()]
    else:
        _dispose(study)
        reports = run_worker_processes(storage_url, study_name, factory, n_workers=n_workers,
                                       n_trials_total=n_trials, timeout_s=timeout_s, should_stop=should_stop,
                                       on_trial_finished=on_trial_finished,
                                       heartbeat_interval=heartbeat_interval, grace_period=grace_period)
    optimise_s = time.monotonic() - started

    data = validate_study(bars, strategy_key=strategy_key, engine_config=engine_config, objective=objective,
                          min_trades=min_trades, n_trials=n_trials, top_n=top_n, warmup=warmup,
                          optimise=optimise, holdout=holdout, fold_list=fold_list, scheme=scheme,
                          storage_url=storage_url, study_name=study_name, sampler=sampler, seed=seed,
                          pruner=pruner, reports=reports, thresholds=thresholds, pbo_partitions=pbo_partitions,
                          stability_step=stability_step, heartbeat_interval=heartbeat_interval,
                          grace_period=grace_period)
    data["timings"] = {"optimise_s": optimise_s, **data["timings"]}
    return TrainingResult(data)


def validate_study(bars, *, strategy_key: str, engine_config: EngineConfig, objective: str, min_trades: int,
                   n_trials: int, top_n: int, warmup: int, optimise, holdout, fold_list, scheme: str,
                   storage_url: str, study_name: str, sampler: str, seed, reports: list[dict],
                   pruner: str = "median", thresholds: Thresholds | None = None,
                   pbo_partitions: int = DEFAULT_PBO_PARTITIONS, stability_step: float = DEFAULT_RELATIVE_STEP,
                   heartbeat_interval: int = DEFAULT_HEARTBEAT_INTERVAL_S,
                   grace_period: int = DEFAULT_GRACE_PERIOD_S) -> dict:
    """The validation half of :func:`train` on a finished study (what the last Celery worker
    runs): the ``top_n`` distinct completed trials by in-sample value are validated (folds,
    combined out-of-sample, hold-out, stability, DSR, PBO, verdict). Returns the result dict of
    ``train(...).to_dict()``, with ``timings`` holding ``validate_s`` only. ``bars`` is the
    whole period (the hold-out included); ``reports`` are the workers' WorkerReport dicts."""
    started = time.monotonic()
    study = load_study(storage_url, study_name, heartbeat_interval=heartbeat_interval, grace_period=grace_period)
    all_trials = study.get_trials(deepcopy=False)
    items = [trial_record(t) for t in all_trials if "discarded" not in t.user_attrs]
    counts = {s: sum(t["state"] == s for t in items) for s in ("complete", "pruned", "fail")}
    invalid = sum(1 for t in items if (t["pruned_reason"] or "").startswith("invalid parameters"))
    n_tried = counts["complete"] + counts["pruned"] - invalid
    if counts["complete"] + counts["pruned"] >= _budget(study, n_trials):
        status = "complete"
    else:
        status = "cancelled" if any(r["stop_reason"] == "cancelled" for r in reports) else "timeout"
    complete = sorted((t for t in all_trials if t.state == TrialState.COMPLETE and t.value is not None),
                      key=lambda t: (-t.value, t.number))
    _dispose(study)
    candidates, seen = [], set()
    for t in complete:
        key = tuple(sorted(t.params.items()))
        if key not in seen:
            seen.add(key)
            candidates.append({"number": t.number, "params": dict(t.params), "value": t.value})
        if len(candidates) >= top_n:
            break
    validation = {"candidates": [], "pbo": None, "selection_sample": None}
    if candidates:
        validation = validate_candidates(
            Evaluator(bars, strategy_key, engine_config), candidates=candidates,
            configs=[t.params for t in complete], folds=fold_list, optimise=optimise, holdout=holdout,
            objective=objective, min_trades=min_trades, n_trials=n_tried, thresholds=thresholds,
            pbo_partitions=pbo_partitions, stability_step=stability_step)
    best = validation["candidates"][0] if validation["candidates"] else None
    pbo = validation["pbo"]
    return {
        "strategy": strategy_key,
        "timeframe": bars.timeframe,
        "objective": objective,
        "min_trades": min_trades,
        "sampler": sampler,
        "pruner": pruner,
        "seed": seed,
        "study_name": study_name,
        "status": status,
        "engine_config": engine_config.to_dict(),
        "period": {"start": int(bars.time[0]), "end": int(bars.time[-1]) + bars.bar_ms, "bars": len(bars)},
        "optimisation": optimise.to_dict(),
        "walkforward": {"scheme": scheme, "k": len(fold_list),
                        "in_sample_bars": fold_list[0].in_sample.n_bars,
                        "out_of_sample_bars": fold_list[0].out_of_sample.n_bars, "warmup_bars": warmup},
        "trials": {"count": len(items), "complete": counts["complete"], "pruned": counts["pruned"],
                   "failed": counts["fail"], "invalid": invalid, "tried": n_tried, "items": items},
        "best": None if best is None else {"number": best["number"], "params": best["params"],
                                           "value": best["value"]},
        "folds": best["folds"] if best else [f.to_dict() for f in fold_list],
        "out_of_sample": best["out_of_sample"] if best else None,
        "holdout": best["holdout"] if best else {**holdout.to_dict(), "metrics": None},
        "dsr": best["dsr"]["value"] if best else None,
        "pbo": None if pbo is None else pbo["pbo"],
        "dsr_detail": best["dsr"] if best else None,
        "pbo_detail": pbo,
        "stability": best["stability"] if best else None,
        "verdict": best["verdict"] if best else _no_candidates_verdict(counts),
        "candidates": validation["candidates"],
        "selection_sample": validation["selection_sample"],
        "workers": reports,
        "timings": {"validate_s": time.monotonic() - started},
    }
