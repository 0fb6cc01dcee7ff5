"""Performance metrics of a backtest. Pure numpy/numba; no Django.

Conventions
-----------
* ``equity`` is the per-bar equity curve marked at each close; ``equity[0]`` is the
  starting equity (the engine cannot fill before bar 1's open, so it equals the cash).
* Per-bar returns are ``r_i = equity[i] / equity[i-1] - 1`` for ``i = 1 .. n-1``.
* Annualisation uses the number of bars in a 365-day year (crypto trades 24/7):
  ``bars_per_year("1h") == 8760``; calendar months annualise with 12.
* Trade metrics use CLOSED trades only (an open position at the end is not a trade). A win
  is ``pnl > 0``, a loss ``pnl < 0``; break-even trades count in ``trade_count`` and
  ``win_rate``'s denominator only.
* Functions return ``float('nan')`` when a metric is undefined (too few bars or trades,
  zero variance) and ``profit_factor`` returns ``inf`` when there are wins but no losses.
  :func:`compute_all` turns every non-finite value into ``None`` so its dict is JSON-safe;
  there ``profit_factor: None`` with ``trade_count > 0`` means "no losing trade".
"""

from __future__ import annotations

import math

import numpy as np

from quant._jit import jit
from quant import timeframes as _timeframes

NAN = float("nan")


def bars_per_year(timeframe: str) -> float:
    """Bars of ``timeframe`` in a year: a 365-day year for fixed bars ("1m" → 525600, "1d" → 365),
    12 for calendar months ("1M")."""
    return _timeframes.bars_per_year(timeframe)


def per_bar_returns(equity) -> np.ndarray:
    """``equity[1:] / equity[:-1] - 1`` as float64 (length n - 1)."""
    equity = np.asarray(equity, dtype=np.float64)
    return equity[1:] / equity[:-1] - 1.0


# --------------------------------------------------------------------------- compiled passes

@jit(nogil=True)
def equity_stats(equity):
    """Everything the equity metrics need, in two passes over ``equity``.

    Returns ``(count, mean, std, downside, skew, kurt, max_dd, peak_index, trough_index,
    recovery_index)`` where the first six describe the per-bar returns: ``count = n - 1``;
    ``std`` is the sample standard deviation (ddof=1); ``downside = sqrt(sum(min(r, 0)^2) /
    count)`` (target 0); ``skew`` and ``kurt`` are the population standardised 3rd and 4th
    central moments (kurtosis not in excess: 3 for a normal). Undefined values are NaN, and
    all return moments are NaN if equity ever reaches <= 0.

    ``max_dd = max_t (1 - equity[t] / max(equity[:t+1]))`` (positive fraction);
    ``peak_index`` is the running high before the deepest trough, ``recovery_index`` the
    first bar after the trough back at or above that high (-1 if never); indices are -1
    when equity never fell.
    """
    n = equity.shape[0]
    nan = np.nan
    count = max(n - 1, 0)
    if n == 0:
        return 0, nan, nan, nan, nan, nan, nan, -1, -1, -1
    total = 0.0
    positive = True
    peak = equity[0]
    peak_i = 0
    worst = 0.0
    worst_peak = -1
    worst_trough = -1
    for i in range(n):
        e = equity[i]
        if i > 0:
            prev = equity[i - 1]
            if not prev > 0.0:
                positive = False
            total += e / prev - 1.0
        if e > peak:
            peak = e
            peak_i = i
        elif e < peak * (1.0 - worst):  # cheap filter: only divide when a new low is possible
            dd = 1.0 - e / peak
            if dd > worst:
                worst = dd
                worst_peak = peak_i
                worst_trough = i
    recovery = -1
    if worst_trough >= 0:
        target = equity[worst_peak]
        for i in range(worst_trough + 1, n):
            if equity[i] >= target:
                recovery = i
                break
    if count < 1 or not positive:
        return count, nan, nan, nan, nan, nan, worst, worst_peak, worst_trough, recovery
    mean = total / count
    m2 = 0.0
    m3 = 0.0
    m4 = 0.0
    down = 0.0
    for i in range(1, n):
        r = equity[i] / equity[i - 1] - 1.0
        d = r - mean
        d2 = d * d
        m2 += d2
        m3 += d2 * d
        m4 += d2 * d2
        if r < 0.0:
            down += r * r
    std = math.sqrt(m2 / (count - 1)) if count > 1 else nan
    downside = math.sqrt(down / count)
    skew = nan
    kurt = nan
    if m2 > 0.0:
        var = m2 / count
        skew = (m3 / count) / var ** 1.5
        kurt = (m4 / count) / (var * var)
    return count, mean, std, downside, skew, kurt, worst, worst_peak, worst_trough, recovery


# --------------------------------------------------------------------------- formulas on equity_stats

def _annual_volatility(stats, bpy):
    return stats[2] * math.sqrt(bpy)


def _sharpe(stats, bpy):
    _, mean, std = stats[:3]
    return mean / std * math.sqrt(bpy) if std > 0 else NAN


def _sortino(stats, bpy):
    _, mean, _, downside = stats[:4]
    return mean / downside * math.sqrt(bpy) if downside > 0 else NAN


def _psr(stats, benchmark):
    count, mean, std, _, skew, kurt = stats[:6]
    if not (count > 2 and std > 0 and math.isfinite(skew) and math.isfinite(kurt)):
        return NAN
    sr = mean / std
    denom = 1.0 - skew * sr + (kurt - 1.0) / 4.0 * sr * sr
    if denom <= 0:
        return NAN
    z = (sr - benchmark) * math.sqrt(count - 1) / math.sqrt(denom)
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))


def _cagr(equity, bpy):
    if len(equity) < 2 or not equity[0] > 0:
        return NAN
    growth = equity[-1] / equity[0]
    if growth <= 0:
        return -1.0
    return growth ** (bpy / (len(equity) - 1)) - 1.0


def _duration(stats, n: int) -> int:
    peak, recovery = stats[7], stats[9]
    if peak < 0:
        return 0
    return int(recovery - peak) if recovery >= 0 else int(n - 1 - peak)


def _as_equity(equity) -> np.ndarray:
    return np.ascontiguousarray(equity, dtype=np.float64)


# --------------------------------------------------------------------------- equity metrics

def total_return(equity) -> float:
    """``equity[-1] / equity[0] - 1`` (fraction; 0.25 = +25 %). NaN for an empty curve."""
    equity = _as_equity(equity)
    return float(equity[-1] / equity[0] - 1.0) if len(equity) else NAN


def cagr(equity, bars_per_year: float) -> float:
    """Compound annual growth: ``(equity[-1] / equity[0]) ** (bars_per_year / (n - 1)) - 1``.

    The curve spans ``n - 1`` bar intervals. -1 if equity ended at or below zero; NaN for
    fewer than 2 bars.
    """
    return _cagr(_as_equity(equity), bars_per_year)


def annual_volatility(equity, bars_per_year: float) -> float:
    """``std(r, ddof=1) * sqrt(bars_per_year)`` of the per-bar returns. NaN below 2 returns."""
    return _annual_volatility(equity_stats(_as_equity(equity)), bars_per_year)


def sharpe(equity, bars_per_year: float) -> float:
    """Annualised Sharpe ratio, risk-free rate 0: ``mean(r) / std(r, ddof=1) * sqrt(bars_per_year)``.

    NaN when the returns have zero variance or there are fewer than 2.
    """
    return _sharpe(equity_stats(_as_equity(equity)), bars_per_year)


def sortino(equity, bars_per_year: float) -> float:
    """Annualised Sortino ratio, target 0: ``mean(r) / sqrt(mean(min(r, 0)^2)) * sqrt(bars_per_year)``.

    The downside deviation averages over ALL returns. NaN when no return is negative.
    """
    return _sortino(equity_stats(_as_equity(equity)), bars_per_year)


def max_drawdown(equity) -> float:
    """Deepest fall from a running high: ``max_t (1 - equity[t] / max(equity[:t+1]))``.

    A positive fraction (0.2 = the curve fell 20 % below its previous high); 0 if it never fell.
    """
    return float(equity_stats(_as_equity(equity))[6])


def max_drawdown_duration(equity) -> int:
    """Bars from the high before the deepest drawdown to the first bar back at that high.

    If equity has not recovered by the last bar, the bars from that high to the last bar
    (the drawdown is still running). 0 if there is no drawdown.
    """
    equity = _as_equity(equity)
    return _duration(equity_stats(equity), len(equity))


def max_drawdown_duration_ms(equity, bar_ms: int) -> int:
    """:func:`max_drawdown_duration` in milliseconds: ``bars * bar_ms``."""
    return max_drawdown_duration(equity) * int(bar_ms)


def calmar(equity, bars_per_year: float) -> float:
    """``cagr / max_drawdown``; NaN when there is no drawdown."""
    equity = _as_equity(equity)
    worst = equity_stats(equity)[6]
    return _cagr(equity, bars_per_year) / worst if worst > 0 else NAN


def probabilistic_sharpe_ratio(equity, benchmark_sharpe: float = 0.0) -> float:
    """Probability that the true per-bar Sharpe exceeds ``benchmark_sharpe`` (Bailey & López de Prado, 2012).

    ``PSR = Φ((SR - SR*) * sqrt(n - 1) / sqrt(1 - γ3 * SR + (γ4 - 1) / 4 * SR^2))`` with
    ``SR = mean(r) / std(r, ddof=1)`` NOT annualised, ``n`` the number of returns, ``γ3``
    the skewness and ``γ4`` the (non-excess) kurtosis of the returns, ``Φ`` the standard
    normal CDF. NaN with fewer than 3 returns, zero variance, or a non-positive denominator.
    """
    return _psr(equity_stats(_as_equity(equity)), benchmark_sharpe)


# --------------------------------------------------------------------------- trade metrics

def _f(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def trade_count(pnl) -> int:
    """Number of closed trades."""
    return int(len(_f(pnl)))


def win_rate(pnl) -> float:
    """``count(pnl > 0) / count(trades)``; NaN without trades."""
    pnl = _f(pnl)
    return float(np.mean(pnl > 0)) if len(pnl) else NAN


def profit_factor(pnl) -> float:
    """``sum(pnl > 0) / |sum(pnl < 0)|``: gross profit per unit of gross loss.

    ``inf`` with wins but no losses; NaN with neither.
    """
    pnl = _f(pnl)
    gross_win, gross_loss = pnl[pnl > 0].sum(), -pnl[pnl < 0].sum()
    if gross_loss > 0:
        return float(gross_win / gross_loss)
    return math.inf if gross_win > 0 else NAN


def expectancy(returns) -> float:
    """Mean trade return ``mean(return)`` (fraction per trade); NaN without trades."""
    returns = _f(returns)
    return float(returns.mean()) if len(returns) else NAN


def avg_win(returns) -> float:
    """Mean return of winning trades (``return > 0``); NaN without wins."""
    wins = _f(returns)[_f(returns) > 0]
    return float(wins.mean()) if len(wins) else NAN


def avg_loss(returns) -> float:
    """Mean return of losing trades (``return < 0``), a negative number; NaN without losses."""
    losses = _f(returns)[_f(returns) < 0]
    return float(losses.mean()) if len(losses) else NAN


def best_trade(returns) -> float:
    """Highest trade return; NaN without trades."""
    returns = _f(returns)
    return float(returns.max()) if len(returns) else NAN


def worst_trade(returns) -> float:
    """Lowest trade return; NaN without trades."""
    returns = _f(returns)
    return float(returns.min()) if len(returns) else NAN


def sqn(pnl) -> float:
    """Van Tharp's System Quality Number on trade P&L: ``sqrt(N) * mean(pnl) / std(pnl, ddof=1)``.

    NaN with fewer than 2 trades or zero spread.
    """
    pnl = _f(pnl)
    if len(pnl) < 2:
        return NAN
    std = pnl.std(ddof=1)
    return float(math.sqrt(len(pnl)) * pnl.mean() / std) if std > 0 else NAN


def exposure(result) -> float:
    """Fraction of bars during which a position was held (taken from the engine result)."""
    return float(result.exposure)


# --------------------------------------------------------------------------- everything at once

def _json(value):
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def compute_from_arrays(equity, pnl, returns, exposure_fraction: float, bars_per_year: float,
                        bar_ms: int | None = None, benchmark_sharpe: float = 0.0) -> dict:
    """All metrics from raw arrays, JSON-safe (non-finite → None). See :func:`compute_all`."""
    equity = _as_equity(equity)
    stats = equity_stats(equity)
    worst = stats[6]
    duration = _duration(stats, len(equity))
    growth = _cagr(equity, bars_per_year)
    return {
        "total_return": _json(total_return(equity)),
        "cagr": _json(growth),
        "annual_volatility": _json(_annual_volatility(stats, bars_per_year)),
        "sharpe": _json(_sharpe(stats, bars_per_year)),
        "sortino": _json(_sortino(stats, bars_per_year)),
        "calmar": _json(growth / worst if worst > 0 else NAN),
        "max_drawdown": _json(worst),
        "max_drawdown_duration_bars": int(duration),
        "max_drawdown_duration_ms": int(duration * bar_ms) if bar_ms else None,
        "win_rate": _json(win_rate(pnl)),
        "profit_factor": _json(profit_factor(pnl)),
        "expectancy": _json(expectancy(returns)),
        "avg_win": _json(avg_win(returns)),
        "avg_loss": _json(avg_loss(returns)),
        "best_trade": _json(best_trade(returns)),
        "worst_trade": _json(worst_trade(returns)),
        "exposure": _json(exposure_fraction),
        "trade_count": trade_count(pnl),
        "sqn": _json(sqn(pnl)),
        "probabilistic_sharpe_ratio": _json(_psr(stats, benchmark_sharpe)),
        "final_equity": _json(equity[-1]) if len(equity) else None,
    }


def compute_all(result, bars_per_year: float | None = None, *, bar_ms: int | None = None,
                benchmark_sharpe: float = 0.0) -> dict:
    """Every metric of an engine result as a JSON-safe dict (NaN/inf → None).

    ``bars_per_year`` and ``bar_ms`` default from ``result.timeframe`` when it is known.
    Keys: total_return, cagr, annual_volatility, sharpe, sortino, calmar, max_drawdown,
    max_drawdown_duration_bars, max_drawdown_duration_ms, win_rate, profit_factor,
    expectancy, avg_win, avg_loss, best_trade, worst_trade, exposure, trade_count, sqn,
    probabilistic_sharpe_ratio, final_equity. Raises ValueError if the annualisation
    cannot be determined.
    """
    timeframe = getattr(result, "timeframe", None)
    if bars_per_year is None:
        if timeframe is None:
            raise ValueError("bars_per_year is required when the result has no timeframe")
        bars_per_year = _timeframes.bars_per_year(timeframe)
    if bar_ms is None and timeframe is not None and not _timeframes.is_calendar(timeframe):
        bar_ms = _timeframes.timeframe_ms(timeframe)  # months have no fixed length: no duration in ms
    trades = result.trades
    return compute_from_arrays(result.equity, trades["pnl"], trades["return"], result.exposure,
                               bars_per_year, bar_ms, benchmark_sharpe)


# --------------------------------------------------------------------------- how far to trust them

#: Below these, figures are shown with a warning: annualised figures extrapolate the period to a
#: year, and trade statistics (win rate, profit factor, SQN, PSR) need enough closed trades.
MIN_RELIABLE_DAYS = 90
MIN_RELIABLE_TRADES = 30
_DAY_MS = 24 * 60 * 60 * 1000


def caveats(metrics: dict, *, span_ms: int, open_position: dict | None = None) -> list[dict]:
    """Warnings a reader must see next to a result: [{code, message}], empty when none apply.

    ``span_ms`` is the length of the tested period. Codes: ``short_period`` (annualised from
    under MIN_RELIABLE_DAYS days), ``no_trades``, ``open_position_only`` (no closed trade, one
    still open: nothing to compute trade statistics from), ``few_trades`` (1 to
    MIN_RELIABLE_TRADES - 1 closed trades).
    """
    out = []
    days = span_ms / _DAY_MS
    if days < MIN_RELIABLE_DAYS:
        out.append({"code": "short_period", "message": (
            f"Short period: annualised figures (CAGR, volatility, Sharpe, Sortino, Calmar) extrapolate "
            f"{days:.1f} days to a year; under {MIN_RELIABLE_DAYS} days they are not reliable.")})
    count = int(metrics.get("trade_count") or 0)
    if count == 0 and open_position:
        p = open_position
        out.append({"code": "open_position_only", "message": (
            f"No closed trade: the only position ({p.get('side')} {p.get('size'):g} from {p.get('entry_price'):g}) is "
            f"still open at the end, so win rate and the other trade statistics are undefined; the result is its "
            f"unrealised PnL ({p.get('unrealized_pnl', 0):+.2f}).")})
    elif count == 0:
        out.append({"code": "no_trades", "message": (
            "No trades: the strategy never entered a position in this period, so the trade statistics are "
            "undefined.")})
    elif count < MIN_RELIABLE_TRADES:
        out.append({"code": "few_trades", "message": (
            f"Only {count} closed trade{'s' if count != 1 else ''}: win rate, profit factor, expectancy, SQN and the "
            f"probabilistic Sharpe ratio are not significant under {MIN_RELIABLE_TRADES} trades.")})
    return out
