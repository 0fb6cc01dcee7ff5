"""Validation of the best candidates of a study: walk-forward out-of-sample, hold-out,
parameter stability, deflated Sharpe, PBO and the verdict.

Definitions
-----------
* **Fold metrics**: each candidate is backtested on every fold's in-sample and
  out-of-sample window (same warm-up rules as the optimiser; each window starts flat with
  the configured cash).
* **Combined out-of-sample**: the per-bar returns of the folds' OOS equity curves are
  chained in time order, ``equity = cash × Π(1 + r)``, i.e. each fold reinvests what the
  previous one ended with. Trade P&L is rescaled by the equity each fold starts from, so the
  profit factor matches the chained curve; exposure is weighted by bars.
* **Selection sample**: the span from the first in-sample bar to the end of the
  optimisation range, backtested continuously for EVERY completed configuration. Its
  per-bar returns feed PBO (CSCV over S blocks of that span; one PBO per study, since it
  judges the selection process) and the deflated Sharpe (the candidate's per-bar Sharpe on
  the span, against the variance of all configurations' per-bar Sharpes, with N = trials
  tried = complete + pruned, excluding parameter sets rejected as invalid).
* **Stability**: the same in-sample objective the optimiser used (mean over the folds'
  IS windows) at one-at-a-time neighbours (:mod:`.stability`).
* **Hold-out**: the final share of the period, never given to the optimiser; its warm-up
  reads the end of the optimisation range.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from quant.metrics import compute_from_arrays, per_bar_returns

from .objective import Evaluator, WindowRun, score_params
from .overfitting import BlockStats, dsr_report, pbo_from_block_stats
from .stability import DEFAULT_RELATIVE_STEP, parameter_stability
from .verdict import Evidence, Thresholds, verdict_for
from .walkforward import Fold, Window

__all__ = ["DEFAULT_PBO_PARTITIONS", "chain_runs", "selection_sample", "validate_candidates"]

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


def selection_sample(folds: Sequence[Fold], optimise: Window) -> Window:
    """The span the optimiser selected on: first in-sample bar → end of the optimisation
    range, with the folds' warm-up."""
    first = min(f.in_sample.start for f in folds)
    warmup = folds[0].in_sample.warmup
    start_ms = min((f.in_sample.start_ms for f in folds if f.in_sample.start_ms is not None), default=None)
    return Window(first, optimise.end, warmup, start_ms, optimise.end_ms)


def _window_dict(window: Window, metrics: dict) -> dict:
    return {**window.to_dict(), "metrics": metrics}


def _sharpe(metrics: Mapping) -> float | None:
    return metrics.get("sharpe")


def validate_candidates(evaluator: Evaluator, *, candidates: Sequence[Mapping], configs: Sequence[Mapping],
                        folds: Sequence[Fold], optimise: Window, holdout: Window, objective: str,
                        min_trades: int, n_trials: int, thresholds: Thresholds | None = None,
                        pbo_partitions: int = DEFAULT_PBO_PARTITIONS,
                        stability_step: float = DEFAULT_RELATIVE_STEP) -> dict:
    """Validate ``candidates`` (dicts with ``number``, ``params``, ``value``; best first).

    ``evaluator`` must hold the FULL bars (optimisation range + hold-out). ``configs``: the
    parameter sets of every completed trial (for PBO and the deflated Sharpe's variance).
    ``n_trials``: trials tried. Returns ``{"candidates": [...], "pbo": {...} | None,
    "selection_sample": {...}}``; each candidate has ``rank``, ``number``, ``params``,
    ``value``, ``in_sample`` (recomputed objective, fold values, mean Sharpe), ``folds``
    (in_sample/out_of_sample windows with metrics), ``out_of_sample`` (combined metrics,
    positive_folds, n_folds), ``holdout``, ``dsr``, ``stability``, ``evidence`` and
    ``verdict``.
    """
    config = evaluator.config
    bpy, bar_ms = evaluator.bars_per_year, evaluator.bars.bar_ms
    sample = selection_sample(folds, optimise)

    # Continuous backtests of every configuration on the selection sample, streamed into
    # CSCV block statistics so that N long return series never sit in memory at once.
    validated = [evaluator.strategy.validate_params(p) for p in configs]
    params_of = {tuple(sorted(p.items())): p for p in validated}
    config_keys = list(params_of)
    wanted = {tuple(sorted(evaluator.strategy.validate_params(c["params"]).items())) for c in candidates}
    kept: dict[tuple, np.ndarray] = {}
    trial_sharpes: list[float] = []

    def sample_returns(key: tuple, params: Mapping) -> np.ndarray:
        r = per_bar_returns(evaluator.run(params, sample, keep_arrays=True).equity)
        if key in wanted:
            kept[key] = r
        return r

    def columns():
        for key in config_keys:
            r = sample_returns(key, params_of[key])
            sd = r.std(ddof=1) if len(r) > 1 else 0.0
            trial_sharpes.append(float(r.mean() / sd) if sd > 0 else float("nan"))
            yield np.nan_to_num(r, nan=0.0, posinf=0.0, neginf=0.0)

    pbo = None
    if len(config_keys) >= 2 and sample.n_bars - 1 >= 2 * pbo_partitions:
        pbo = pbo_from_block_stats(BlockStats.from_columns(columns(), pbo_partitions))
    else:
        for _ in columns():
            pass

    is_windows = [f.in_sample for f in folds]
    results = []
    for rank, cand in enumerate(candidates, start=1):
        params = evaluator.strategy.validate_params(cand["params"])
        scores = score_params(evaluator, params, is_windows, objective=objective, min_trades=min_trades)
        fold_rows, oos_runs, is_sharpes = [], [], []
        positive = 0
        for fold, record in zip(folds, scores.records):
            is_metrics = record["metrics"]
            oos_run = evaluator.run(params, fold.out_of_sample, keep_arrays=True)
            oos_runs.append(oos_run)
            if _sharpe(is_metrics) is not None:
                is_sharpes.append(is_metrics["sharpe"])
            positive += (oos_run.metrics.get("total_return") or 0.0) > 0
            fold_rows.append({"index": fold.index,
                              "in_sample": _window_dict(fold.in_sample, is_metrics),
                              "out_of_sample": _window_dict(fold.out_of_sample, oos_run.metrics)})
        combined = chain_runs(oos_runs, config.cash, bpy, bar_ms)
        holdout_metrics = evaluator.metrics(params, holdout)
        stability = parameter_stability(
            lambda p: score_params(evaluator, p, is_windows, objective=objective, min_trades=min_trades).value,
            evaluator.strategy, params, base_value=scores.value, relative_step=stability_step)
        key = tuple(sorted(params.items()))
        returns = kept[key] if key in kept else sample_returns(key, params)
        dsr = dsr_report(returns, trial_sharpes,
                         n_trials=max(n_trials, len(config_keys)), bars_per_year=bpy)
        evidence = Evidence(
            in_sample_sharpe=float(np.mean(is_sharpes)) if is_sharpes else None,
            out_of_sample_sharpe=combined.get("sharpe"),
            out_of_sample_trades=int(combined.get("trade_count") or 0),
            positive_oos_folds=int(positive), n_folds=len(folds),
            holdout_sharpe=holdout_metrics.get("sharpe"),
            holdout_trades=int(holdout_metrics.get("trade_count") or 0),
            dsr=dsr["value"], pbo=None if pbo is None else pbo["pbo"], n_trials=n_trials,
            stability_drop=stability["relative_drop"])
        results.append({
            "rank": rank,
            "number": cand.get("number"),
            "params": params,
            "value": cand.get("value"),
            "in_sample": {"value": scores.value, "fold_values": scores.values,
                          "sharpe_mean": evidence.in_sample_sharpe},
            "folds": fold_rows,
            "out_of_sample": {"metrics": combined, "positive_folds": int(positive), "n_folds": len(folds)},
            "holdout": _window_dict(holdout, holdout_metrics),
            "dsr": dsr,
            "stability": stability,
            "evidence": vars(evidence).copy(),
            "verdict": verdict_for(evidence, thresholds),
        })
    return {"candidates": results, "pbo": pbo,
            "selection_sample": {**sample.to_dict(), "n_configs": len(config_keys)}}
