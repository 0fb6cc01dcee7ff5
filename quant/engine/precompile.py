"""Compile every numba function of the research core ahead of use, into numba's disk cache.

    python -m quant.engine.precompile        # prints what it compiled and how long it took

``make install`` / ``make install-dev`` run it, so the first backtest after an install does
not pay compilation. It exercises, on a few synthetic bars (only to trigger compilation;
nothing is stored but numba's cache), the very argument types production uses: every
library strategy's indicators and signals (float64 / bool arrays), the backtest loop with
and without short signals and strategy levels, the sweep's metrics, and the stepping API's
compiled steps. Where the cache directory is not writable numba compiles in memory instead
and this only warms the current process (``quant/_jit.py``).
"""

from __future__ import annotations

import sys
import time

import numpy as np


def _bars():
    from quant.strategies import Bars

    n = 400
    rng = np.random.default_rng(0)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    opens = np.r_[close[0], close[:-1]]
    high = np.maximum(opens, close) * 1.002
    low = np.minimum(opens, close) * 0.998
    start = 1_700_000_000_000 - 1_700_000_000_000 % 86_400_000
    return Bars(start + np.arange(n) * 3_600_000, opens, high, low, close, np.ones(n), "1h")


def precompile() -> dict:
    """Compile everything; return ``{"seconds": total, "steps": {name: seconds}}``."""
    steps: dict[str, float] = {}

    def timed(name, fn):
        t0 = time.perf_counter()
        fn()
        steps[name] = time.perf_counter() - t0

    timed("import", lambda: __import__("quant.engine.sweep"))
    from quant.engine import EngineConfig, run
    from quant.engine.stepper import apply_external_fill, bar_at, new_state, signal_row, step
    from quant.metrics import compute_all
    from quant.strategies import all_strategies

    bars = _bars()
    signals = {}

    def strategies():
        for strategy in all_strategies():
            params = strategy.default_params()
            if strategy.key == "donchian_breakout":
                params["atr_stop"] = 2.0  # also compile the ATR
            signals[strategy.key] = strategy.signals(bars, params)

    def engine():
        for key, sig in signals.items():
            for config in (EngineConfig(), EngineConfig(allow_short=True, stop_loss=0.02, trailing_stop=0.03)):
                compute_all(run(bars, sig, config))

    def stepper():
        state = new_state(EngineConfig(stop_loss=0.02))
        sig = signals["sma_cross"]
        for i in range(20):
            step(state, bar_at(bars, i), signal_row(sig, i))
        step(state, bar_at(bars, 20), signal_row(sig, 20), simulate_fills=False)
        apply_external_fill(state, "buy", 1.0, float(bars.close[20]), 0.0)

    timed("strategies", strategies)
    timed("engine", engine)
    timed("stepper", stepper)
    return {"seconds": sum(steps.values()), "steps": steps}


def main() -> None:
    report = precompile()
    parts = ", ".join(f"{k} {v:.1f}s" for k, v in report["steps"].items())
    print(f"numba functions compiled in {report['seconds']:.1f}s ({parts})")


if __name__ == "__main__":
    sys.exit(main())
