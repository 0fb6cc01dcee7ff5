"""Benchmark of the strategy signals, the backtest engine and the parameter sweep.

Data is SYNTHETIC: a seeded geometric random walk of one-minute bars, not market data.

    .venv/bin/python bench/bench_engine.py            # 1,000,000 bars
    .venv/bin/python bench/bench_engine.py --bars 200000 --json

Timings are the best of several repetitions after a warm-up call (JIT compilation and the
numba cache load are excluded). The plain-Python figure runs the very same engine loop
with ``NUMBA_DISABLE_JIT=1`` in a subprocess on a 100,000-bar slice, and checks that it
produces the same trades as the compiled loop.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from quant.engine import EngineConfig, run, simulate_arrays  # noqa: E402
from quant.engine.sweep import param_grid, sweep  # noqa: E402
from quant.strategies import Bars, get_strategy  # noqa: E402

START_MS = 1_704_067_200_000  # 2024-01-01T00:00:00Z
CONFIG = EngineConfig(cash=10_000.0, fee=0.001, slippage=0.0005, stop_loss=0.02, take_profit=0.04)
PARAMS = {"fast": 10, "slow": 30}
GRID = param_grid({"fast": [5, 8, 10, 12, 15, 20, 25, 30, 40, 50],
                   "slow": [60, 80, 100, 120, 150, 180, 200, 250, 300, 400]})
PYTHON_SLICE = 100_000


def synthetic_bars(n: int, seed: int = 20240101) -> Bars:
    """Seeded random walk of ``n`` one-minute bars (synthetic, for benchmarking only)."""
    rng = np.random.default_rng(seed)
    close = 30_000 * np.exp(np.cumsum(rng.normal(0, 0.0008, n)))
    opens = np.r_[close[0], close[:-1]] * (1 + rng.normal(0, 0.0001, n))
    high = np.maximum(opens, close) * (1 + rng.exponential(0.0004, n))
    low = np.minimum(opens, close) * (1 - rng.exponential(0.0004, n))
    volume = rng.lognormal(2, 1, n)
    return Bars(START_MS + np.arange(n, dtype=np.int64) * 60_000, opens, high, low, close, volume, "1m")


def best_time(fn, repeat: int = 5) -> float:
    """Fastest wall time of ``repeat`` calls, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def best_cpu_time(fn, repeat: int = 3) -> float:
    """Least process CPU time (all threads) of ``repeat`` calls: what the work costs whatever
    else the machine runs (on a shared, loaded machine wall time measures the competition)."""
    fn()
    times = []
    for _ in range(repeat):
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
    return min(times)


def python_loop_seconds(n: int) -> dict:
    """Run the engine loop uncompiled on the first ``n`` bars in a subprocess."""
    env = dict(os.environ, NUMBA_DISABLE_JIT="1")
    out = subprocess.run([sys.executable, __file__, "--python-worker", str(n)], env=env,
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def _python_worker(n: int) -> None:
    bars = synthetic_bars(1_000_000)[:n]
    signals = get_strategy("sma_cross").signals(bars, PARAMS)
    start = time.perf_counter()
    state, _, buffer = simulate_arrays(bars.open, bars.high, bars.low, bars.close, signals, CONFIG)
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "trades": buffer[:state[0]].tolist()}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bars", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=None, help="sweep threads (default: CPU count)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.add_argument("--python-worker", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.python_worker:
        _python_worker(args.python_worker)
        return

    n = args.bars
    bars = synthetic_bars(n)
    strategy = get_strategy("sma_cross")
    signals = strategy.signals(bars, PARAMS)
    t_signals = best_time(lambda: strategy.signals(bars, PARAMS))
    t_run = best_time(lambda: run(bars, signals, CONFIG))
    equity, trades = np.empty(n), np.empty((n, 10))
    t_kernel = best_time(lambda: simulate_arrays(bars.open, bars.high, bars.low, bars.close, signals,
                                                 CONFIG, equity, trades))
    result = run(bars, signals, CONFIG)

    workers = args.workers or os.cpu_count() or 1
    t_sweep = best_time(lambda: sweep(bars, "sma_cross", GRID, CONFIG, workers=workers), repeat=3)
    t_sweep_1 = best_time(lambda: sweep(bars, "sma_cross", GRID, CONFIG, workers=1), repeat=2)
    cpu_sweep = best_cpu_time(lambda: sweep(bars, "sma_cross", GRID, CONFIG, workers=workers))

    python_n = min(PYTHON_SLICE, n)
    py = python_loop_seconds(python_n)
    sliced = bars[:python_n]
    sliced_signals = strategy.signals(sliced, PARAMS)
    compiled = run(sliced, sliced_signals, CONFIG)
    t_kernel_slice = best_time(lambda: simulate_arrays(sliced.open, sliced.high, sliced.low, sliced.close,
                                                       sliced_signals, CONFIG))
    same = np.allclose(np.array(py["trades"]).reshape(-1, 10)[:, 3:9],
                       np.column_stack([compiled.trades[k] for k in
                                        ("entry_price", "exit_price", "size", "fees", "pnl", "return")]),
                       rtol=1e-12, atol=0) if py["trades"] else len(compiled.trades) == 0

    figures = {
        "data": f"SYNTHETIC seeded random walk, {n:,} one-minute bars",
        "cpu_count": os.cpu_count(),
        "strategy": f"sma_cross {PARAMS}, fee 0.1%, slippage 0.05%, SL 2%, TP 4%",
        "trades": int(len(result.trades)),
        "signals_seconds": t_signals,
        "signals_bars_per_s": n / t_signals,
        "engine_run_seconds": t_run,
        "engine_run_bars_per_s": n / t_run,
        "engine_kernel_bars_per_s": n / t_kernel,
        "sweep_combos": len(GRID),
        "sweep_workers": workers,
        "sweep_seconds": t_sweep,
        "sweep_bar_steps_per_s": len(GRID) * n / t_sweep,
        "sweep_1_thread_bar_steps_per_s": len(GRID) * n / t_sweep_1,
        "sweep_bar_steps_per_cpu_s": len(GRID) * n / cpu_sweep,
        "load_average_1m": os.getloadavg()[0],
        "python_loop_bars": python_n,
        "python_loop_seconds": py["seconds"],
        "python_loop_bars_per_s": python_n / py["seconds"],
        "speedup_vs_python": (python_n / t_kernel_slice) / (python_n / py["seconds"]),
        "python_loop_same_trades": bool(same),
    }
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    print(f"data      {figures['data']}")
    print(f"setup     {figures['strategy']}; {figures['trades']:,} trades; {figures['cpu_count']} CPUs")
    print(f"signals   {t_signals * 1e3:9.1f} ms  {n / t_signals / 1e6:8.1f} M bars/s")
    print(f"engine    {t_run * 1e3:9.1f} ms  {n / t_run / 1e6:8.1f} M bars/s   (run(); kernel alone "
          f"{n / t_kernel / 1e6:.1f} M bars/s)")
    print(f"sweep     {t_sweep * 1e3:9.1f} ms  {len(GRID) * n / t_sweep / 1e6:8.1f} M bar-steps/s "
          f"({len(GRID)} combos, {workers} threads; 1 thread: {len(GRID) * n / t_sweep_1 / 1e6:.1f} M; "
          f"{len(GRID) * n / cpu_sweep / 1e6:.1f} M per CPU-second)")
    print(f"load      {os.getloadavg()[0]:.1f} (1-minute load average on {os.cpu_count()} CPUs: wall-clock figures "
          "share the machine)")
    print(f"python    {py['seconds'] * 1e3:9.1f} ms  {python_n / py['seconds'] / 1e6:8.3f} M bars/s   "
          f"({python_n:,} bars, same loop uncompiled; same trades: {same})")
    print(f"speed-up  {figures['speedup_vs_python']:9.0f} x  compiled loop vs the same loop in plain Python, same slice")


if __name__ == "__main__":
    main()
