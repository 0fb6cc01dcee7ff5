"""What the optimiser maximises: a strategy's metrics on in-sample windows, as one number.

* :class:`Evaluator` backtests one strategy on fixed bar windows of one Bars object. It keeps
  one Bars slice and one :class:`IndicatorCache` per window (warm-up included) and one set
  of engine buffers per thread, so a worker that runs hundreds of trials computes each
  distinct indicator array once per window and allocates nothing per trial. Build one per
  worker and study (candles loaded once), pass it to :func:`make_objective`.
* :func:`objective_value` turns a metrics dict into the trial value for one window.
* :func:`make_objective` is the optuna objective of one study: suggest → validate → the
  study's window(s) (a fold's in-sample window, or the whole optimisation range) → value,
  with every bar range used recorded on the trial.

Objective values (per window, then averaged over the study's windows with equal weight)
-----------------------------------------------------------------------------
``sharpe``, ``sortino``, ``calmar``: the annualised metric of the window's equity curve.
``profit_factor``: gross profit / gross loss of the window's closed trades; with winning
trades and no loss it counts as VALUE_CAP. ``composite``: see COMPOSITE_WEIGHTS.
A window with fewer than ``min_trades`` closed trades scores a penalty in [PENALTY,
VALUE_FLOOR) graded by its trade count; one whose metric is undefined (no variance) scores
PENALTY; every other value is clipped to [VALUE_FLOOR, VALUE_CAP], so penalties are strictly
below anything a real backtest can score and one freak window cannot dominate the mean.
"""

from __future__ import annotations

import itertools
import math
import threading
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import numpy as np
import optuna

from quant.engine import EngineConfig, simulate_arrays
from quant.engine import core as engine_core
from quant.metrics import bars_per_year as _bars_per_year
from quant.metrics import compute_from_arrays
from quant.strategies import (Bars, BoolParam, CategoricalParam, IndicatorCache,
                                     ParameterError, Strategy, get_strategy)
from quant.strategies.warmup import drop_warmup, warmup_bars

from .walkforward import Window

__all__ = [
    "OBJECTIVES", "PENALTY", "VALUE_FLOOR", "VALUE_CAP", "COMPOSITE_WEIGHTS", "DEFAULT_MIN_TRADES",
    "CACHE_BYTES_PER_WINDOW", "objective_value", "max_warmup", "WindowRun", "Evaluator",
    "FoldScores", "score_params", "suggest_params", "prune_check_steps", "make_objective",
]

OBJECTIVES = ("sharpe", "sortino", "calmar", "profit_factor", "composite")

PENALTY = -100.0
"""Value of a window whose metric is undefined. A window with ``t < min_trades`` trades
scores ``PENALTY + t / min_trades`` (from -100 up to, not including, -99): still below
VALUE_FLOOR, so a config that barely trades always ranks under one that trades badly, but
graded, so that TPE can tell which way "trades more" lies when no config trades enough."""

VALUE_FLOOR = -99.0
"""Lowest value a real window can score (annualised Sharpe on one-minute bars with fees can
reach -100 and beyond; below this the ordering no longer matters)."""

VALUE_CAP = 100.0
"""Highest value a window can score; also the value of an infinite profit factor or Calmar
(winning trades and no loss / no drawdown)."""

COMPOSITE_WEIGHTS: Mapping[str, float] = {"sharpe": 0.4, "sortino": 0.2, "calmar": 0.2,
                                          "log_profit_factor": 0.2}
"""``composite = 0.4 Sharpe + 0.2 Sortino + 0.2 Calmar + 0.2 ln(profit factor)``, each term
clipped to [VALUE_FLOOR, VALUE_CAP] first. Sharpe carries risk-adjusted return, Sortino
weighs only downside volatility, Calmar punishes deep drawdowns, and ln(profit factor) is
the trade-level edge on the same sign convention (0 = break-even). Any undefined term makes
the window score PENALTY."""

DEFAULT_MIN_TRADES = 10
"""Default minimum of closed trades in EACH evaluated window; fewer scores PENALTY."""

CACHE_BYTES_PER_WINDOW = 48 * 1024 * 1024
"""Memory budget of one window's indicator cache (float64 arrays of the window's length)."""


# --------------------------------------------------------------------------- values

def _clip(value: float) -> float:
    return min(max(value, VALUE_FLOOR), VALUE_CAP)


def _metric_term(metrics: Mapping, name: str) -> float | None:
    """One objective term from a compute_all-style dict; None when undefined."""
    if name in ("profit_factor", "log_profit_factor"):
        pf = metrics.get("profit_factor")
        if pf is None:  # None with trades = no losing trade (infinite); without = undefined
            gained = (metrics.get("total_return") or 0.0) > 0
            return VALUE_CAP if metrics.get("trade_count") and gained else None
        if name == "profit_factor":
            return _clip(pf)
        return _clip(math.log(pf)) if pf > 0 else VALUE_FLOOR
    value = metrics.get(name)
    if value is None:
        if name == "calmar" and (metrics.get("max_drawdown") == 0.0) and (metrics.get("total_return") or 0) > 0:
            return VALUE_CAP  # gained without ever falling
        return None
    return _clip(float(value))


def objective_value(metrics: Mapping, objective: str, *, min_trades: int = DEFAULT_MIN_TRADES
                    ) -> tuple[float, str | None]:
    """``(value, penalty_reason)`` of one window's metrics (keys of ``compute_all``).

    ``penalty_reason`` is None for a real value, else a short sentence and the value is a
    penalty (module docstring). Raises ValueError for an unknown objective name.
    """
    if objective not in OBJECTIVES:
        raise ValueError(f"unknown objective {objective!r}; choose one of {', '.join(OBJECTIVES)}")
    trades = int(metrics.get("trade_count") or 0)
    if trades < min_trades:
        # Graded so the optimiser still sees which way "more trades" lies: [PENALTY, VALUE_FLOOR).
        return PENALTY + trades / min_trades, f"penalised: {trades} trades < min {min_trades}"
    if objective == "composite":
        total = 0.0
        for name, weight in COMPOSITE_WEIGHTS.items():
            term = _metric_term(metrics, name)
            if term is None:
                return PENALTY, f"penalised: {name.replace('_', ' ')} undefined"
            total += weight * term
        return float(total), None
    term = _metric_term(metrics, objective)
    if term is None:
        return PENALTY, f"penalised: {objective.replace('_', ' ')} undefined"
    return float(term), None


# --------------------------------------------------------------------------- warm-up

def _corner_values(param) -> list:
    if isinstance(param, CategoricalParam):
        return list(param.choices)
    if isinstance(param, BoolParam):
        return [False, True]
    return [param.low, param.high]


def max_warmup(strategy: str | type[Strategy], timeframe: str, *, max_points: int = 4096) -> int:
    """Largest warm-up (bars) any point of the strategy's search space needs on ``timeframe``,
    by the one warm-up rule (:func:`quant.strategies.warmup.warmup_bars`: recursive indicators
    converged, finite windows full), so every trial of a window reads enough bars before it.

    Evaluates the rule at the defaults and every corner of the space (low/high of
    numeric parameters, every choice of the others), skipping corners that fail the
    strategy's cross-field check. Warm-up grows with window lengths, so the corners bound it.
    """
    cls = get_strategy(strategy) if isinstance(strategy, str) else strategy
    best = warmup_bars(cls, cls.default_params(), timeframe)
    values = [_corner_values(p) for p in cls.params]
    for count, combo in enumerate(itertools.product(*values)):
        if count >= max_points:
            break
        try:
            params = cls.validate_params(dict(zip((p.name for p in cls.params), combo)))
        except ParameterError:
            continue
        best = max(best, warmup_bars(cls, params, timeframe))
    return int(best)


# --------------------------------------------------------------------------- evaluator

@dataclass
class WindowRun:
    """Backtest of one parameter set on one window: JSON-safe ``metrics`` and, when asked
    for, the window's ``equity`` curve and closed trades' ``pnl`` / ``returns`` (copies)."""

    metrics: dict
    equity: np.ndarray | None = None
    pnl: np.ndarray | None = None
    returns: np.ndarray | None = None
    exposure: float = 0.0


class Evaluator:
    """Backtests of one strategy on windows of one Bars object, with shared caches.

    ``run(params, window)`` gives the strategy ONLY ``bars[window.read_start:window.end]``
    (warm-up + window), so it cannot read a bar after the window even by mistake; signals
    in the warm-up are dropped and the engine starts flat with ``config.cash`` at
    ``window.start``. Thread-safe: indicator caches may compute an entry twice in a race,
    engine buffers are per thread.
    """

    def __init__(self, bars: Bars, strategy_key: str, engine_config: EngineConfig | None = None, *,
                 bars_per_year: float | None = None, cache_bytes: int = CACHE_BYTES_PER_WINDOW):
        self.bars = bars
        self.strategy_key = strategy_key
        self.strategy = get_strategy(strategy_key)
        self.config = engine_config or EngineConfig()
        self.bars_per_year = bars_per_year or _bars_per_year(bars.timeframe)
        self.cache_bytes = int(cache_bytes)
        self._slices: dict[tuple[int, int], tuple[Bars, IndicatorCache]] = {}
        self._lock = threading.Lock()
        self._local = threading.local()

    def _slice(self, window: Window) -> tuple[Bars, IndicatorCache]:
        key = (window.read_start, window.end)
        try:
            return self._slices[key]
        except KeyError:
            pass
        if not (0 <= window.read_start <= window.start < window.end <= len(self.bars)):
            raise ValueError(f"window [{window.start}, {window.end}) with {window.warmup} warm-up bars "
                             f"does not fit in {len(self.bars)} bars")
        with self._lock:
            if key not in self._slices:
                data = self.bars[window.read_start:window.end]
                items = max(8, min(256, self.cache_bytes // max(1, 8 * len(data))))
                self._slices[key] = (data, IndicatorCache(data, max_items=items))
            return self._slices[key]

    def _buffers(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        store = getattr(self._local, "buffers", None)
        if store is None:
            store = self._local.buffers = {}
        if n not in store:
            store[n] = (np.empty(n), np.empty((n, engine_core.TRADE_COLUMNS)))
        return store[n]

    def run(self, params: Mapping, window: Window, *, keep_arrays: bool = False) -> WindowRun:
        """Backtest ``params`` (validated here; ParameterError if invalid) on ``window``."""
        params = self.strategy.validate_params(params)
        data, cache = self._slice(window)
        signals = drop_warmup(self.strategy.signals(data, params, cache=cache), window.warmup)
        bars = self.bars
        s, e = window.start, window.end
        equity, trades = self._buffers(e - s)
        state, equity, buffer = simulate_arrays(bars.open[s:e], bars.high[s:e], bars.low[s:e],
                                                bars.close[s:e], signals, self.config,
                                                equity=equity, trades=trades)
        count = state[0]
        pnl = buffer[:count, engine_core.COL_PNL]
        returns = buffer[:count, engine_core.COL_RETURN]
        exposure = state[1] / (e - s)
        metrics = compute_from_arrays(equity, pnl, returns, exposure, self.bars_per_year, bars.bar_ms)
        if not keep_arrays:
            return WindowRun(metrics, exposure=exposure)
        return WindowRun(metrics, equity.copy(), pnl.copy(), returns.copy(), exposure)

    def metrics(self, params: Mapping, window: Window) -> dict:
        """Shortcut: ``run(params, window).metrics``."""
        return self.run(params, window).metrics


# --------------------------------------------------------------------------- scoring

@dataclass
class FoldScores:
    """Result of one parameter set on some windows: ``value`` = mean of ``values`` (one per window)."""

    value: float
    values: list[float]
    records: list[dict]


def score_params(evaluator: Evaluator, params: Mapping, windows: Sequence[Window], *,
                 objective: str, min_trades: int,
                 on_window: Callable[[int, float, dict], None] | None = None) -> FoldScores:
    """Objective of ``params`` on each window and their mean (equal weights).

    ``records[i]`` = ``{"window", "start_index", "end_index", "read_start_index", "value",
    "penalty", "metrics"}``; ``penalty`` says why ``value`` is a penalty, not a measurement. ``on_window(i, running_mean, record)`` is called after each
    window (the optimiser reports and prunes there; an exception it raises stops scoring).
    """
    values: list[float] = []
    records: list[dict] = []
    for i, window in enumerate(windows):
        metrics = evaluator.metrics(params, window)
        value, penalty = objective_value(metrics, objective, min_trades=min_trades)
        values.append(value)
        record = {"window": i, "start_index": window.start, "end_index": window.end,
                  "read_start_index": window.read_start, "value": value, "penalty": penalty,
                  "metrics": metrics}
        records.append(record)
        if on_window is not None:
            on_window(i, float(np.mean(values)), record)
    return FoldScores(float(np.mean(values)), values, records)


def suggest_params(strategy: type[Strategy], trial) -> dict:
    """Draw every parameter of ``strategy`` from an optuna trial (``Param.suggest``)."""
    return {p.name: p.suggest(trial) for p in strategy.params}


def prune_check_steps(n_folds: int) -> frozenset[int]:
    """Window indices after which the pruner is asked: the second and the second-to-last.

    Asking after every window would cost a read of the study each time; never after the last
    window (nothing left to save).
    """
    last = n_folds - 2
    return frozenset(s for s in (min(1, last), last) if s >= 0)


def make_objective(bars: Bars, strategy_key: str, engine_config: EngineConfig | None = None, *,
                   objective: str = "sharpe", min_trades: int = DEFAULT_MIN_TRADES,
                   windows: Sequence[Window], cache: Evaluator | None = None
                   ) -> Callable[[optuna.Trial], float]:
    """The optuna objective of ONE study: ``fn(trial) -> mean objective over ``windows````.

    A walk-forward fold's study passes that fold's in-sample window only; the study that
    chooses the offered parameters passes the whole optimisation range. Nothing else is read:
    out-of-sample windows and the hold-out never reach the optimiser.

    Per trial: draw parameters with each Param's ``suggest`` (the search space is the
    strategy's own parameter definitions), validate them, backtest each window,
    ``trial.report(running mean, window index)`` after each and ask the pruner at
    :func:`prune_check_steps` (with a single window there is nothing to prune on). User
    attributes written on the trial:

    * ``bar_ranges``: ``[{"window", "read_start", "start", "end"}]``, half-open bar indices
      into ``bars``: ``read_start`` is the first bar given to the strategy, ``end - 1`` the
      last. Tests assert from these that no out-of-sample bar reached the optimiser.
    * ``window_metrics``: ``score_params`` records of the windows evaluated (also when pruned).
    * ``pruned_reason``: why a pruned trial was pruned.

    A parameter set that fails the strategy's cross-field rules (e.g. sma_cross with
    fast >= slow) is PRUNED at once with ``pruned_reason = "invalid parameters: ..."``: it
    costs no backtest, counts toward the trial budget like any pruned trial, and TPE learns
    to avoid the region. ``cache``: an :class:`Evaluator` on these very ``bars`` to share
    across objectives (default: a new one, which the returned function keeps).
    """
    if objective not in OBJECTIVES:
        raise ValueError(f"unknown objective {objective!r}; choose one of {', '.join(OBJECTIVES)}")
    windows = list(windows)
    if not windows:
        raise ValueError("make_objective needs at least one window")
    evaluator = cache or Evaluator(bars, strategy_key, engine_config)
    if evaluator.bars is not bars or evaluator.strategy_key != strategy_key:
        raise ValueError("the Evaluator passed as cache belongs to other bars or another strategy")
    if engine_config is not None and evaluator.config != engine_config:
        raise ValueError("the Evaluator passed as cache uses another engine configuration")
    strategy = evaluator.strategy
    for w in windows:
        if w.read_start < 0 or w.end > len(bars):
            raise ValueError(f"window [{w.read_start}, {w.end}) does not fit in {len(bars)} bars")
    check_steps = prune_check_steps(len(windows))
    ranges = [{"window": i, "read_start": w.read_start, "start": w.start, "end": w.end}
              for i, w in enumerate(windows)]

    def fn(trial: optuna.Trial) -> float:
        raw = suggest_params(strategy, trial)
        try:
            params = strategy.validate_params(raw)
        except ParameterError as exc:
            reason = f"invalid parameters: {exc}"
            trial.set_user_attr("pruned_reason", reason)
            raise optuna.TrialPruned(reason) from None
        trial.set_user_attr("bar_ranges", ranges)

        def on_window(i: int, running: float, record: dict) -> None:
            trial.report(running, i)
            if i in check_steps and trial.should_prune():
                done = scores_so_far + [record]
                trial.set_user_attr("window_metrics", done)
                reason = (f"pruned after window {i}: running mean objective {running:.4g} "
                          f"is among the worst at this step")
                trial.set_user_attr("pruned_reason", reason)
                raise optuna.TrialPruned(reason)
            scores_so_far.append(record)

        scores_so_far: list[dict] = []
        scores = score_params(evaluator, params, windows, objective=objective,
                              min_trades=min_trades, on_window=on_window)
        trial.set_user_attr("window_metrics", scores.records)
        return scores.value

    fn.evaluator = evaluator  # type: ignore[attr-defined]
    return fn
