"""Parameter sweeps: one strategy, many parameter combinations, the same bars.

Speed comes from three things: indicator arrays are computed once per distinct window and
shared through an :class:`IndicatorCache`; the compiled loop releases the GIL, so
combinations run in parallel threads; and each thread reuses its equity and trade buffers.
Each combination goes through exactly the code :func:`quant.engine.run` and
:func:`quant.metrics.compute_all` use, so a sweep row equals the metrics of an
individual run with the same parameters.
"""

from __future__ import annotations

import itertools
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Mapping, Sequence

import numpy as np

from quant.metrics import bars_per_year as _bars_per_year
from quant.metrics import compute_from_arrays
from quant.strategies.base import Bars, IndicatorCache, ParameterError, get_strategy

from . import core
from .config import EngineConfig
from .runner import simulate_arrays


def param_grid(spec: Mapping[str, Sequence]) -> list[dict]:
    """Cartesian product of parameter values: ``{"fast": [5, 10], "slow": [20]}`` →
    ``[{"fast": 5, "slow": 20}, {"fast": 10, "slow": 20}]`` (last key varies fastest)."""
    keys = list(spec)
    return [dict(zip(keys, values)) for values in itertools.product(*(spec[k] for k in keys))]


def sweep(bars: Bars, strategy_key: str, param_grid: Sequence[Mapping], config: EngineConfig | None = None,
          *, bars_per_year: float | None = None, workers: int | None = None,
          skip_invalid: bool = False) -> list[dict]:
    """Backtest every parameter combination of ``strategy_key`` on ``bars``.

    Returns one dict per combination, in input order: ``{"params": <validated params>,
    **metrics}`` with the keys of :func:`quant.metrics.compute_all`.
    Invalid combinations raise ParameterError naming the combination's index, unless
    ``skip_invalid``, in which case their row is ``{"params": <as given>, "error": message}``.
    ``workers`` threads (default: CPU count) run combinations in parallel; results do not
    depend on it. ``bars_per_year`` defaults from ``bars.timeframe``.
    """
    strategy = get_strategy(strategy_key)
    config = config or EngineConfig()
    if bars_per_year is None:
        bars_per_year = _bars_per_year(bars.timeframe)
    jobs: list[tuple[int, dict | None, str | None]] = []
    for index, raw in enumerate(param_grid):
        try:
            jobs.append((index, strategy.validate_params(raw), None))
        except ParameterError as exc:
            if not skip_invalid:
                raise ParameterError(f"combination {index} ({dict(raw)}): {exc}") from None
            jobs.append((index, dict(raw), str(exc)))

    cache = IndicatorCache(bars)
    local = threading.local()
    n = len(bars)

    def evaluate(job):
        index, params, error = job
        if error is not None:
            return {"params": params, "error": error}
        if not hasattr(local, "equity"):
            local.equity = np.empty(n)
            local.trades = np.empty((n, core.TRADE_COLUMNS))
        signals = strategy.signals(bars, params, cache=cache)
        state, equity, buffer = simulate_arrays(bars.open, bars.high, bars.low, bars.close, signals,
                                                config, equity=local.equity, trades=local.trades)
        count = state[0]
        metrics = compute_from_arrays(equity, buffer[:count, core.COL_PNL], buffer[:count, core.COL_RETURN],
                                      state[1] / n, bars_per_year, bars.bar_ms)
        return {"params": params, **metrics}

    workers = workers or os.cpu_count() or 1
    if workers == 1 or len(jobs) < 2:
        return [evaluate(job) for job in jobs]
    with ThreadPoolExecutor(max_workers=min(workers, len(jobs))) as pool:
        return list(pool.map(evaluate, jobs))
