"""Named reads for backtests: equity series for charts, comparisons, CSV rows."""
from __future__ import annotations

import numpy as np

from quant.metrics import caveats
from quant.strategies.warmup import warmup_caveats
from quant.timeframes import CALENDAR_TIMEFRAMES, TIMEFRAMES, nominal_ms
from tradepulse.core.jobs import JobState

from .models import BacktestRun, EquityCurve


def run_warnings(run: BacktestRun) -> list[dict]:
    """What a reader must know before trusting a finished run's figures (short period, few or no
    closed trades, only an open position, warm-up missing before the start): [{code, message}]. The API, the live events and the
    results page show these; the command prints the same list for its own computation."""
    if run.state != JobState.SUCCEEDED or not run.metrics:
        return []
    return warmup_caveats(run.warmup_bars, run.warmup_missing) + caveats(
        run.metrics, span_ms=int((run.end - run.start).total_seconds() * 1000), open_position=run.open_position)


def equity_series(run: BacktestRun, *, max_points: int = 2000) -> dict:
    """Equity and drawdown for a chart, at most ~max_points points.

    Downsampling keeps each bucket's first, lowest and highest points, so the drawdown troughs
    and peaks a trader looks for survive. Times are epoch ms.
    """
    try:
        curve = run.equity_curve
    except EquityCurve.DoesNotExist:
        return {"time": [], "equity": [], "drawdown": [], "points": 0, "bars": 0}
    time, equity = curve.unpack()
    peak = np.maximum.accumulate(equity) if len(equity) else equity
    drawdown = np.where(peak > 0, equity / peak - 1.0, 0.0) if len(equity) else equity
    index = _downsample_index(equity, max_points)
    return {"time": time[index].tolist(), "equity": equity[index].round(6).tolist(),
            "drawdown": drawdown[index].round(6).tolist(), "points": int(len(index)), "bars": int(len(equity))}


def _downsample_index(values: np.ndarray, max_points: int) -> np.ndarray:
    n = len(values)
    if n <= max_points:
        return np.arange(n)
    buckets = max(1, max_points // 3)
    edges = np.linspace(0, n, buckets + 1, dtype=np.int64)
    picks = [0, n - 1]
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        if b > a:
            chunk = values[a:b]
            picks += [a, a + int(np.argmin(chunk)), a + int(np.argmax(chunk))]
    return np.unique(np.asarray(picks, dtype=np.int64))


COMPARE_METRICS = ["total_return", "cagr", "sharpe", "sortino", "calmar", "max_drawdown", "win_rate",
                   "profit_factor", "expectancy", "trade_count", "exposure", "sqn", "probabilistic_sharpe_ratio"]
# Lower is better for these; everything else ranks higher-is-better.
LOWER_IS_BETTER = {"max_drawdown"}


def compare(runs: list[BacktestRun], *, rank_by: str = "sharpe") -> dict:
    """Side-by-side metrics and a ranking by `rank_by` (runs without the metric rank last)."""
    if rank_by not in COMPARE_METRICS:
        raise ValueError(f"rank_by: {rank_by!r} is not a comparable metric; use one of {', '.join(COMPARE_METRICS)}")
    rows = [{"id": r.pk, "name": str(r), "strategy_key": r.strategy_key, "parameters": r.parameters,
             "market": r.market.symbol, "timeframe": r.timeframe, "start": r.start, "end": r.end,
             "metrics": {m: r.metrics.get(m) for m in COMPARE_METRICS}} for r in runs]
    sign = 1 if rank_by in LOWER_IS_BETTER else -1
    ranked = sorted(rows, key=lambda row: (row["metrics"][rank_by] is None,
                                           sign * (row["metrics"][rank_by] or 0)))
    for position, row in enumerate(ranked, start=1):
        row["rank"] = position
    return {"rank_by": rank_by, "metrics": COMPARE_METRICS, "runs": ranked}


def price_series(run: BacktestRun, bars, *, max_candles: int = 1500) -> dict:
    """OHLC of the run's range for a chart, resampled to the smallest library timeframe that
    keeps at most `max_candles` candles, plus the run's entries and exits as markers."""
    shown = bars
    for timeframe in sorted([*TIMEFRAMES, *CALENDAR_TIMEFRAMES], key=nominal_ms):
        try:
            candidate = bars.resample(timeframe)
        except ValueError:  # not a whole multiple of the run's timeframe
            continue
        shown = candidate
        if len(candidate) <= max_candles:
            break
    trades = list(run.trades.values("number", "side", "entry_time", "exit_time", "entry_price", "exit_price",
                                    "pnl", "exit_reason")[:5000])
    return {
        "timeframe": shown.timeframe,
        "time": shown.time.tolist(), "open": shown.open.tolist(), "high": shown.high.tolist(),
        "low": shown.low.tolist(), "close": shown.close.tolist(),
        "trades": trades,
    }
