"""Validation of a training run: the walk-forward out-of-sample test of the optimisation
PROCESS, and the hold-out test of the parameters it offers.

Definitions
-----------
* **Walk-forward** (:func:`walkforward_report`): fold i's parameters are the best trial of
  fold i's own study, which saw only fold i's in-sample window. They are backtested once on
  fold i's in-sample window (the figures they were chosen on) and once on its out-of-sample
  window. Each window starts flat with the configured cash.
* **Combined out-of-sample**: the per-bar returns of the folds' OOS equity curves chained in
  time order, ``equity = cash × Π(1 + r)``, i.e. each fold reinvests what the previous one
  ended with. Trade P&L is rescaled by the equity each fold starts from, so the profit factor
  matches the chained curve; exposure is weighted by bars. A fold whose study completed no
  trial has no parameters: it does not trade and is not counted as profitable.
* **Walk-forward efficiency** (Pardo): annualised out-of-sample return / annualised
  in-sample return, where the annualised return is the mean per-bar return × bars per year
  (arithmetic, so a few weeks of data do not explode it as compounding would). Per fold,
  and for the run: combined OOS over the mean of the folds' IS figures. Undefined (None)
  when the in-sample figure is not positive: a ratio to a loss means nothing.
* **Final window**: the whole optimisation range (first usable bar → start of the hold-out).
  The final study chooses the offered parameters there; its top candidates are tested once
  on the hold-out.
* **PBO** (CSCV, S blocks): the T × N matrix is the per-bar returns on the final window of
  every distinct configuration the final study completed (the selection the offered
  parameters came from), streamed as block sums. One value per run.
* **Deflated Sharpe**: the candidate's per-bar Sharpe on the final window, against SR0 from
  the variance of the same N configurations' per-bar Sharpes, with N = every trial tried in
  EVERY study of the run (complete + pruned, invalid parameter sets excluded).
* **Stability**: the final study's objective at one-at-a-time neighbours (:mod:`.stability`).
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from quant.metrics import compute_from_arrays, per_bar_returns

from .objective import Evaluator, WindowRun, objective_value, score_params
from .overfitting import BlockStats, dsr_report, pbo_from_block_stats
from .stability import DEFAULT_RELATIVE_STEP, parameter_stability
from .verdict import Evidence, Thresholds, verdict_for
from .walkforward import Fold, Window

__all__ = ["DEFAULT_PBO_PARTITIONS", "chain_runs", "annualised_return", "efficiency", "walkforward_report",
           "validate_candidates", "evidence_for"]

DEFAULT_PBO_PARTITIONS = 16
"""CSCV blocks: C(16, 8) = 12,870 in-sample/out-of-sample splits, as in the PBO paper."""


def chain_runs(runs: Sequence[WindowRun], cash: float, bars_per_year: float, bar_ms: int | None) -> dict:
    """Metrics of consecutive window runs chained into one equity curve (module docstring).

    Each run must have been made with ``keep_arrays=True``.
    """
    returns, pnl, trade_returns = [], [], []
    level = 1.0
    held = 0.0
    bars = 0
    for run in runs:
        r = per_bar_returns(run.equity)
        returns.append(r)
        pnl.append(run.pnl * level)
        trade_returns.append(run.returns)
        level *= float(np.prod(1.0 + r))
        held += run.exposure * len(run.equity)
        bars += len(run.equity)
    chained = np.concatenate(returns) if returns else np.zeros(0)
    equity = cash * np.concatenate(([1.0], np.cumprod(1.0 + chained)))
    return compute_from_arrays(equity, np.concatenate(pnl) if pnl else np.zeros(0),
                               np.concatenate(trade_returns) if trade_returns else np.zeros(0),
                               held / bars if bars else 0.0, bars_per_year, bar_ms)


def annualised_return(runs: Sequence[WindowRun], bars_per_year: float) -> float | None:
    """Mean per-bar return of the runs' equity curves × bars per year (None without returns)."""
    returns = [per_bar_returns(r.equity) for r in runs if r.equity is not None and len(r.equity) > 1]
    if not returns:
        return None
    return float(np.concatenate(returns).mean() * bars_per_year)


def efficiency(oos: float | None, is_: float | None) -> float | None:
    """Walk-forward efficiency OOS / IS; None when either is missing or IS is not positive."""
    if oos is None or is_ is None or not is_ > 0:
        return None
    return float(oos / is_)


def _window_dict(window: Window, metrics: dict | None, **extra) -> dict:
    return {**window.to_dict(), "metrics": metrics, **extra}


def walkforward_report(evaluator: Evaluator, *, folds: Sequence[Fold], chosen: Sequence[Mapping | None],
                       objective: str, min_trades: int) -> dict:
    """Test each fold's chosen parameters once on its out-of-sample window (module docstring).

    ``chosen[i]``: ``{"number", "params", "value"}`` of fold i's best trial, or None when its
    study completed none. ``evaluator`` must hold bars covering every window. Returns
    ``{"folds": [...], "out_of_sample": {...}}``: each fold has ``index``, ``trial``,
    ``params``, ``value`` (the in-sample objective it was chosen on), ``penalty`` (why that
    value is a penalty, or None), ``in_sample`` / ``out_of_sample`` (window + metrics, and
    ``annualised_return``) and ``walkforward_efficiency``; ``out_of_sample`` has the chained
    ``metrics``, ``positive_folds``, ``n_folds``, ``n_folds_with_params``,
    ``in_sample_sharpe_mean``, the annualised returns and ``walkforward_efficiency``.
    """
    config, bpy, bar_ms = evaluator.config, evaluator.bars_per_year, evaluator.bars.bar_ms
    rows, oos_runs, is_runs, is_sharpes = [], [], [], []
    positive = 0
    for fold, pick in zip(folds, chosen):
        if pick is None:
            rows.append({"index": fold.index, "trial": None, "params": None, "value": None,
                         "penalty": "no trial of this fold's study completed: nothing was chosen or tested",
                         "in_sample": _window_dict(fold.in_sample, None, annualised_return=None),
                         "out_of_sample": _window_dict(fold.out_of_sample, None, annualised_return=None),
                         "walkforward_efficiency": None})
            continue
        params = evaluator.strategy.validate_params(pick["params"])
        is_run = evaluator.run(params, fold.in_sample, keep_arrays=True)
        oos_run = evaluator.run(params, fold.out_of_sample, keep_arrays=True)
        is_runs.append(is_run)
        oos_runs.append(oos_run)
        value, penalty = objective_value(is_run.metrics, objective, min_trades=min_trades)
        if is_run.metrics.get("sharpe") is not None:
            is_sharpes.append(is_run.metrics["sharpe"])
        positive += (oos_run.metrics.get("total_return") or 0.0) > 0
        is_ann, oos_ann = annualised_return([is_run], bpy), annualised_return([oos_run], bpy)
        rows.append({"index": fold.index, "trial": pick.get("number"), "params": params, "value": value,
                     "penalty": penalty,
                     "in_sample": _window_dict(fold.in_sample, is_run.metrics, annualised_return=is_ann),
                     "out_of_sample": _window_dict(fold.out_of_sample, oos_run.metrics, annualised_return=oos_ann),
                     "walkforward_efficiency": efficiency(oos_ann, is_ann)})
    combined = chain_runs(oos_runs, config.cash, bpy, bar_ms) if oos_runs else None
    is_ann = [r["in_sample"]["annualised_return"] for r in rows if r["in_sample"]["annualised_return"] is not None]
    is_mean = float(np.mean(is_ann)) if is_ann else None
    oos_ann = annualised_return(oos_runs, bpy)
    return {"folds": rows, "out_of_sample": {
        "metrics": combined, "positive_folds": int(positive), "n_folds": len(folds),
        "n_folds_with_params": len(oos_runs),
        "in_sample_sharpe_mean": float(np.mean(is_sharpes)) if is_sharpes else None,
        "in_sample_annualised_return": is_mean, "annualised_return": oos_ann,
        "walkforward_efficiency": efficiency(oos_ann, is_mean)}}


def evidence_for(walkforward: Mapping, *, holdout_metrics: Mapping, dsr: float | None, pbo: float | None,
                 n_trials: int, stability_drop: float | None) -> Evidence:
    """The verdict's evidence: the walk-forward process (in-sample vs out-of-sample), and the
    offered candidate (hold-out, DSR, stability), with the run's PBO."""
    oos = walkforward["out_of_sample"]
    combined = oos["metrics"] or {}
    return Evidence(in_sample_sharpe=oos["in_sample_sharpe_mean"], out_of_sample_sharpe=combined.get("sharpe"),
                    out_of_sample_trades=int(combined.get("trade_count") or 0),
                    positive_oos_folds=int(oos["positive_folds"]), n_folds=int(oos["n_folds"]),
                    holdout_sharpe=holdout_metrics.get("sharpe"),
                    holdout_trades=int(holdout_metrics.get("trade_count") or 0),
                    dsr=dsr, pbo=pbo, n_trials=n_trials, stability_drop=stability_drop)


def validate_candidates(evaluator: Evaluator, *, candidates: Sequence[Mapping], configs: Sequence[Mapping],
                        final: Window, holdout: Window, walkforward: Mapping, objective: str,
                        min_trades: int, n_trials: int, thresholds: Thresholds | None = None,
                        pbo_partitions: int = DEFAULT_PBO_PARTITIONS,
                        stability_step: float = DEFAULT_RELATIVE_STEP) -> dict:
    """Validate the final study's ``candidates`` (dicts with ``number``, ``params``,
    ``value``; best first) on the hold-out, with DSR, PBO, stability and a verdict.

    ``evaluator`` must hold the FULL bars (optimisation range + hold-out). ``configs``: the
    parameter sets of every completed trial of the final study (PBO's matrix and the DSR's
    variance). ``n_trials``: trials tried in every study of the run. ``walkforward``: the
    :func:`walkforward_report` of the run. Returns ``{"candidates": [...], "pbo": {...} |
    None}``; each candidate has ``rank``, ``number``, ``params``, ``value``, ``in_sample``
    (metrics on the final window), ``holdout``, ``dsr``, ``stability``, ``evidence`` and
    ``verdict``.
    """
    bpy = evaluator.bars_per_year
    validated = [evaluator.strategy.validate_params(p) for p in configs]
    params_of = {tuple(sorted(p.items())): p for p in validated}
    config_keys = list(params_of)
    wanted = {tuple(sorted(evaluator.strategy.validate_params(c["params"]).items())) for c in candidates}
    kept: dict[tuple, tuple[np.ndarray, dict]] = {}
    trial_sharpes: list[float] = []

    def final_run(key: tuple, params: Mapping) -> np.ndarray:
        run = evaluator.run(params, final, keep_arrays=True)
        r = per_bar_returns(run.equity)
        if key in wanted:
            kept[key] = (r, run.metrics)
        return r

    def columns():
        # Continuous backtests of every configuration on the final window, streamed into CSCV
        # block statistics so that N long return series never sit in memory at once.
        for key in config_keys:
            r = final_run(key, params_of[key])
            sd = r.std(ddof=1) if len(r) > 1 else 0.0
            trial_sharpes.append(float(r.mean() / sd) if sd > 0 else float("nan"))
            yield np.nan_to_num(r, nan=0.0, posinf=0.0, neginf=0.0)

    pbo = None
    if len(config_keys) >= 2 and final.n_bars - 1 >= 2 * pbo_partitions:
        pbo = pbo_from_block_stats(BlockStats.from_columns(columns(), pbo_partitions))
    else:
        for _ in columns():
            pass

    results = []
    for rank, cand in enumerate(candidates, start=1):
        params = evaluator.strategy.validate_params(cand["params"])
        key = tuple(sorted(params.items()))
        if key not in kept:
            final_run(key, params)
        returns, final_metrics = kept[key]
        value, penalty = objective_value(final_metrics, objective, min_trades=min_trades)
        holdout_metrics = evaluator.metrics(params, holdout)
        stability = parameter_stability(
            lambda p: score_params(evaluator, p, [final], objective=objective, min_trades=min_trades).value,
            evaluator.strategy, params, base_value=value, relative_step=stability_step)
        dsr = dsr_report(returns, trial_sharpes, n_trials=max(n_trials, len(config_keys)), bars_per_year=bpy)
        evidence = evidence_for(walkforward, holdout_metrics=holdout_metrics, dsr=dsr["value"],
                                pbo=None if pbo is None else pbo["pbo"], n_trials=n_trials,
                                stability_drop=stability["relative_drop"])
        results.append({
            "rank": rank,
            "number": cand.get("number"),
            "params": params,
            "value": cand.get("value"),
            "penalty": penalty,
            "in_sample": _window_dict(final, final_metrics, value=value),
            "holdout": _window_dict(holdout, holdout_metrics),
            "dsr": dsr,
            "stability": stability,
            "evidence": vars(evidence).copy(),
            "verdict": verdict_for(evidence, thresholds),
        })
    return {"candidates": results, "pbo": pbo}
