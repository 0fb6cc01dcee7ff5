"""Walk-forward optimisation of one strategy on one series, as it is defined.

1. The final ``holdout_share`` of the period is split off; nothing in the optimisation
   sees it. ``k`` walk-forward folds are laid over the rest (:mod:`.walkforward`).
2. One optuna study per fold optimises on THAT fold's in-sample window only (the sampler's
   guidance included: it learns from that study's trials alone), and one "final" study on
   the whole optimisation range. Workers share every study (:func:`runner.run_studies`).
3. Each fold's best parameters are tested once on that fold's out-of-sample window; the
   out-of-sample results are chained and the walk-forward efficiency is reported: this
   judges the optimisation PROCESS on data it never selected on.
4. The final study's best parameters are the ones offered; they are tested once on the
   hold-out, with DSR (every trial of every study counted), PBO (CSCV on the final study's
   configurations) and stability, and a verdict (:mod:`.validate`, :mod:`.verdict`).

Studies are named ``<base>.fold-<i>`` and ``<base>.final`` (:func:`study_names`).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Callable, Mapping

import optuna

from quant.engine import EngineConfig
from quant.strategies import get_strategy

from .objective import DEFAULT_MIN_TRADES, OBJECTIVES, Evaluator, make_objective, max_warmup
from .runner import (DEFAULT_GRACE_PERIOD_S, DEFAULT_HEARTBEAT_INTERVAL_S, _budget, best_trial, create_study,
                     load_study, run_studies, run_worker_processes, trial_record)
from .stability import DEFAULT_RELATIVE_STEP
from .storage import dispose_storage, make_storage
from .validate import DEFAULT_PBO_PARTITIONS, validate_candidates, walkforward_report
from .verdict import Thresholds
from .walkforward import Fold, Window, holdout_split
from .walkforward import folds as make_folds

__all__ = ["FINAL", "Plan", "plan_training", "study_names", "fold_of", "StudyObjectives", "TrainingResult",
           "train", "validate_training"]

FINAL = "final"
"""Key of the study on the whole optimisation range (the one whose parameters are offered)."""


@dataclass(frozen=True)
class Plan:
    """Where everything sits, as half-open bar ranges of the whole period: the warm-up every
    window reads, the optimisation range, the hold-out, the folds and the final window."""

    warmup: int
    optimise: Window
    holdout: Window
    folds: list[Fold]
    final: Window
    scheme: str = "rolling"

    def study_windows(self) -> dict[str, list[Window]]:
        """``{"fold-0": [IS 0], …, "final": [whole optimisation range]}``: what each study sees."""
        windows = {f"fold-{f.index}": [f.in_sample] for f in self.folds}
        windows[FINAL] = [self.final]
        return windows


def plan_training(bars_or_n, *, strategy_key: str, timeframe: str, holdout_share: float = 0.2, folds: int = 5,
                  scheme: str = "rolling", in_sample_bars: int | None = None,
                  out_of_sample_bars: int | None = None) -> Plan:
    """The :class:`Plan` for a Bars object (times known) or a bar count; ValueError with the
    numbers when it cannot fit."""
    warmup = max_warmup(get_strategy(strategy_key), timeframe)
    optimise, holdout = holdout_split(bars_or_n, holdout_share, warmup_bars=warmup)
    part = bars_or_n[:optimise.end] if hasattr(bars_or_n, "time") else optimise.end
    fold_list = make_folds(part, k=folds, scheme=scheme, in_sample_bars=in_sample_bars,
                           out_of_sample_bars=out_of_sample_bars, warmup_bars=warmup)
    start_ms = int(bars_or_n.time[warmup]) if hasattr(bars_or_n, "time") else None
    final = Window(warmup, optimise.end, warmup, start_ms, optimise.end_ms)
    return Plan(warmup, optimise, holdout, fold_list, final, scheme)


def study_names(base: str, plan: Plan | int) -> dict[str, str]:
    """``{study key: study name}`` (folds first, then the final study) for a run whose
    studies share the name ``base``; ``plan``: the Plan or the number of folds."""
    k = len(plan.folds) if isinstance(plan, Plan) else int(plan)
    return {key: f"{base}.{key}" for key in [*(f"fold-{i}" for i in range(k)), FINAL]}


def fold_of(key: str) -> int | None:
    """Fold index of a study key ("fold-3" → 3), None for the final study."""
    return int(key.split("-", 1)[1]) if key.startswith("fold-") else None


@dataclass
class StudyObjectives:
    """Picklable objective factories over bars already in memory, one per study, sharing one
    Evaluator (indicator caches) per process. Give it the OPTIMISATION-range bars only: the
    optimiser's processes then never hold a hold-out bar."""

    bars: object
    strategy_key: str
    engine_config: EngineConfig
    objective: str
    min_trades: int
    windows: Mapping[str, list[Window]]
    _evaluator: Evaluator | None = field(default=None, repr=False)

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_evaluator": None}

    def evaluator(self) -> Evaluator:
        if self._evaluator is None:
            self._evaluator = Evaluator(self.bars, self.strategy_key, self.engine_config)
        return self._evaluator

    def objective_for(self, key: str) -> Callable:
        return make_objective(self.bars, self.strategy_key, self.engine_config, objective=self.objective,
                              min_trades=self.min_trades, windows=self.windows[key], cache=self.evaluator())

    def tasks(self, names: Mapping[str, str]) -> list[tuple[str, Callable]]:
        """``[(study name, factory)]`` for :func:`runner.run_studies`, folds first."""
        return [(names[key], _Factory(self, key)) for key in self.windows]


@dataclass
class _Factory:
    objectives: StudyObjectives
    key: str

    def __call__(self):
        return self.objectives.objective_for(self.key)


@dataclass
class TrainingResult:
    """Everything :func:`train` found; ``to_dict()`` is the JSON printed by ``train --json``
    (README.md in this package lists every key)."""

    data: dict

    def to_dict(self) -> dict:
        return self.data

    def __getitem__(self, key: str):
        return self.data[key]


def train(bars, *, strategy_key: str, engine_config: EngineConfig | None = None, objective: str = "sharpe",
          min_trades: int = DEFAULT_MIN_TRADES, sampler: str = "tpe", n_trials: int = 100,
          seed: int | None = None, folds: int = 5, scheme: str = "rolling",
          in_sample_bars: int | None = None, out_of_sample_bars: int | None = None,
          holdout_share: float = 0.2, storage_url: str, study_name: str, timeout_s: float | None = None,
          n_workers: int = 1, top_n: int = 5, pruner: str = "median", grid: Mapping[str, list] | None = None,
          thresholds: Thresholds | None = None, should_stop: Callable[[], bool] | None = None,
          on_trial_finished: Callable[[str, optuna.trial.FrozenTrial], None] | None = None,
          heartbeat_interval: int = DEFAULT_HEARTBEAT_INTERVAL_S, grace_period: int = DEFAULT_GRACE_PERIOD_S,
          pbo_partitions: int = DEFAULT_PBO_PARTITIONS,
          stability_step: float = DEFAULT_RELATIVE_STEP) -> TrainingResult:
    """Walk-forward optimisation of ``strategy_key`` on ``bars``, in-process (module docstring).

    ``n_trials`` is the budget of EACH study (``folds + 1`` studies). ``n_workers`` local
    processes share the studies (1 = this process); ``timeout_s`` is per worker;
    ``should_stop`` is checked between trials; ``on_trial_finished(study_key, trial)``.
    Returns a :class:`TrainingResult`. Raises ValueError for impossible configurations
    (unknown strategy/objective/sampler, too few bars for the folds, oversized grid...).
    """
    engine_config = engine_config or EngineConfig()
    if objective not in OBJECTIVES:
        raise ValueError(f"unknown objective {objective!r}; choose one of {', '.join(OBJECTIVES)}")
    if not isinstance(n_workers, int) or n_workers < 1:
        raise ValueError(f"n_workers must be a positive integer, got {n_workers!r}")
    if not isinstance(top_n, int) or top_n < 1:
        raise ValueError(f"top_n must be a positive integer, got {top_n!r}")
    plan = plan_training(bars, strategy_key=strategy_key, timeframe=bars.timeframe, holdout_share=holdout_share,
                         folds=folds, scheme=scheme, in_sample_bars=in_sample_bars,
                         out_of_sample_bars=out_of_sample_bars)
    names = study_names(study_name, plan)
    keys = {name: key for key, name in names.items()}

    started = time.monotonic()
    storage = make_storage(storage_url, heartbeat_interval=heartbeat_interval, grace_period=grace_period)
    for name in names.values():
        create_study(storage_url, name, sampler=sampler, seed=seed, pruner=pruner, strategy_key=strategy_key,
                     grid=grid, storage=storage)
    dispose_storage(storage)
    objectives = StudyObjectives(bars[:plan.optimise.end], strategy_key, engine_config, objective, min_trades,
                                 plan.study_windows())
    callback = None if on_trial_finished is None else (lambda name, frozen: on_trial_finished(keys[name], frozen))
    if n_workers == 1:
        reports = [run_studies(storage_url, objectives.tasks(names), n_trials_total=n_trials, timeout_s=timeout_s,
                               worker_id=f"{os.getpid()}-0", should_stop=should_stop, on_trial_finished=callback,
                               heartbeat_interval=heartbeat_interval, grace_period=grace_period).to_dict()]
    else:
        reports = run_worker_processes(storage_url, objectives.tasks(names), n_workers=n_workers,
                                       n_trials_total=n_trials, timeout_s=timeout_s, should_stop=should_stop,
                                       on_trial_finished=callback, heartbeat_interval=heartbeat_interval,
                                       grace_period=grace_period)
    optimise_s = time.monotonic() - started
    data = validate_training(bars, plan=plan, strategy_key=strategy_key, engine_config=engine_config,
                             objective=objective, min_trades=min_trades, n_trials=n_trials, top_n=top_n,
                             storage_url=storage_url, study_name=study_name, sampler=sampler, seed=seed,
                             pruner=pruner, reports=reports, thresholds=thresholds, pbo_partitions=pbo_partitions,
                             stability_step=stability_step, heartbeat_interval=heartbeat_interval,
                             grace_period=grace_period)
    data["timings"] = {"optimise_s": optimise_s, **data["timings"]}
    return TrainingResult(data)


def _no_candidates_verdict(counts: dict) -> dict:
    return {"code": "insufficient_evidence", "text": "insufficient evidence", "reasons": [
        f"No trial of the final study completed ({counts['pruned']} pruned, {counts['failed']} failed): "
        f"nothing to validate."]}


def _counts(items: list[dict]) -> dict:
    counts = {s: sum(t["state"] == s for t in items) for s in ("complete", "pruned", "fail")}
    invalid = sum(1 for t in items if (t["pruned_reason"] or "").startswith("invalid parameters"))
    return {"count": len(items), "complete": counts["complete"], "pruned": counts["pruned"],
            "failed": counts["fail"], "invalid": invalid, "tried": counts["complete"] + counts["pruned"] - invalid}


def validate_training(bars, *, plan: Plan, strategy_key: str, engine_config: EngineConfig, objective: str,
                      min_trades: int, n_trials: int, top_n: int, storage_url: str, study_name: str, sampler: str,
                      seed, reports: list[dict], pruner: str = "median", thresholds: Thresholds | None = None,
                      pbo_partitions: int = DEFAULT_PBO_PARTITIONS, stability_step: float = DEFAULT_RELATIVE_STEP,
                      heartbeat_interval: int = DEFAULT_HEARTBEAT_INTERVAL_S,
                      grace_period: int = DEFAULT_GRACE_PERIOD_S) -> dict:
    """The validation half of :func:`train` on finished studies (what the last Celery worker
    runs). ``bars`` is the whole period (the hold-out included); ``reports`` are the workers'
    WorkerReport dicts. Returns the result dict of ``train(...).to_dict()`` with ``timings``
    holding ``validate_s`` only."""
    started = time.monotonic()
    names = study_names(study_name, plan)
    storage = make_storage(storage_url, heartbeat_interval=heartbeat_interval, grace_period=grace_period)
    trials: dict[str, list] = {}
    budgets = {}
    try:
        for key, name in names.items():
            study = load_study(storage_url, name, storage=storage)
            trials[key] = [t for t in study.get_trials(deepcopy=False) if "discarded" not in t.user_attrs]
            budgets[key] = _budget(study, n_trials)
    finally:
        dispose_storage(storage)
    items = [{**trial_record(t, study=key), "fold": fold_of(key)} for key, ts in trials.items() for t in ts]
    per_study = {key: _counts([i for i in items if i["study"] == key]) for key in names}
    totals = _counts(items)
    if all(per_study[k]["complete"] + per_study[k]["pruned"] >= budgets[k] for k in names):
        status = "complete"
    else:
        status = "cancelled" if any(r["stop_reason"] == "cancelled" for r in reports) else "timeout"

    evaluator = Evaluator(bars, strategy_key, engine_config)
    chosen = []
    for fold in plan.folds:
        best = best_trial(trials[f"fold-{fold.index}"])
        chosen.append(None if best is None else {"number": best.number, "params": dict(best.params),
                                                 "value": best.value})
    walkforward = walkforward_report(evaluator, folds=plan.folds, chosen=chosen, objective=objective,
                                     min_trades=min_trades)

    final_complete = [t for t in trials[FINAL] if t.state == optuna.trial.TrialState.COMPLETE and t.value is not None]
    ranked = []
    first = best_trial(final_complete)
    for t in ([first] if first else []) + sorted(final_complete, key=lambda t: (-t.value, t.number)):
        if all(t.params != c["params"] for c in ranked):
            ranked.append({"number": t.number, "params": dict(t.params), "value": t.value})
        if len(ranked) >= top_n:
            break
    validation = {"candidates": [], "pbo": None}
    if ranked:
        validation = validate_candidates(
            evaluator, candidates=ranked, configs=[t.params for t in final_complete], final=plan.final,
            holdout=plan.holdout, walkforward=walkforward, objective=objective, min_trades=min_trades,
            n_trials=totals["tried"], thresholds=thresholds, pbo_partitions=pbo_partitions,
            stability_step=stability_step)
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
        "studies": names,
        "status": status,
        "engine_config": engine_config.to_dict(),
        "period": {"start": int(bars.time[0]), "end": bars.end_ms, "bars": len(bars)},
        "optimisation": plan.optimise.to_dict(),
        "walkforward": {"scheme": plan.scheme, "k": len(plan.folds),
                        "in_sample_bars": plan.folds[0].in_sample.n_bars,
                        "out_of_sample_bars": plan.folds[0].out_of_sample.n_bars, "warmup_bars": plan.warmup,
                        "trials_per_study": n_trials,
                        "efficiency": walkforward["out_of_sample"]["walkforward_efficiency"]},
        "trials": {**totals, "per_study": per_study, "items": items},
        "best": None if best is None else {"number": best["number"], "study": FINAL, "params": best["params"],
                                           "value": best["value"], "penalty": best["penalty"]},
        "folds": walkforward["folds"],
        "out_of_sample": walkforward["out_of_sample"],
        "final_window": plan.final.to_dict(),
        "holdout": best["holdout"] if best else {**plan.holdout.to_dict(), "metrics": None},
        "dsr": best["dsr"]["value"] if best else None,
        "pbo": None if pbo is None else pbo["pbo"],
        "dsr_detail": best["dsr"] if best else None,
        "pbo_detail": pbo,
        "stability": best["stability"] if best else None,
        "verdict": best["verdict"] if best else _no_candidates_verdict(per_study[FINAL]),
        "candidates": validation["candidates"],
        "workers": reports,
        "timings": {"validate_s": time.monotonic() - started},
    }
