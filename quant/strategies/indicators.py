"""Technical indicators over numpy arrays.

Every function takes float arrays (any array-like is coerced to float64), returns arrays of
the same length, and puts NaN in the warm-up region where the indicator is not yet defined.
Comparisons with NaN are False, so a signal built from these never fires during warm-up.
Inputs are expected to be finite (candles); a NaN inside the input propagates.

Window statistics use numpy sliding windows; the moving average (the hot path of parameter
sweeps) and the recursive indicators (EMA, Wilder smoothing), which numpy cannot express
without a Python loop, are small numba loops.
Each value at index ``t`` depends only on inputs ``[0, t]`` (no lookahead).
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from quant._jit import jit

__all__ = [
    "sma", "ema", "rsi", "rolling_std", "rolling_max", "rolling_min", "macd", "donchian",
    "true_range", "atr", "shift", "crossed_above", "crossed_below", "crosses",
]


def _as_float(x) -> np.ndarray:
    return np.ascontiguousarray(x, dtype=np.float64)


def _check_window(window: int) -> int:
    if int(window) != window or window < 1:
        raise ValueError(f"window must be a positive integer, got {window!r}")
    return int(window)


@jit(nogil=True)
def _add_compensated(total, comp, value):
    """Neumaier summation step: returns the new (sum, compensation)."""
    t = total + value
    if abs(total) >= abs(value):
        comp += (total - t) + value
    else:
        comp += (value - t) + total
    return t, comp


@jit(nogil=True)
def _rolling_mean(x, window):
    n = x.shape[0]
    out = np.empty(n)
    ref = x[0] if n else 0.0
    total = 0.0
    comp = 0.0
    for i in range(n):
        total, comp = _add_compensated(total, comp, x[i] - ref)
        if i >= window:
            total, comp = _add_compensated(total, comp, ref - x[i - window])
        out[i] = (total + comp) / window + ref if i >= window - 1 else np.nan
    return out


def sma(x, window: int) -> np.ndarray:
    """Simple moving average over the last ``window`` values (inclusive of ``t``).

    NaN for the first ``window - 1`` entries. O(n): a running window sum of ``x - x[0]`` with
    compensated (Neumaier) summation, so the result stays within a few ulps of the exact
    mean even after millions of bars, and a flat stretch averages to exactly its price.
    """
    return _rolling_mean(_as_float(x), _check_window(window))


@jit(nogil=True)
def _ema(x, window):
    n = len(x)
    out = np.full(n, np.nan)
    start = 0
    while start < n and np.isnan(x[start]):
        start += 1
    if start + window > n:
        return out
    value = 0.0
    for i in range(start, start + window):
        value += x[i]
    value /= window
    out[start + window - 1] = value
    k = 2.0 / (window + 1.0)
    for i in range(start + window, n):
        value = (x[i] - value) * k + value
        out[i] = value
    return out


def ema(x, window: int) -> np.ndarray:
    """Exponential moving average, ``k = 2 / (window + 1)``, seeded with the simple average
    of the first ``window`` values (as TA-Lib). Leading NaNs in ``x`` are skipped, so an EMA
    of an indicator with a warm-up (e.g. the MACD line) starts where that indicator starts.
    """
    return _ema(_as_float(x), _check_window(window))


@jit(nogil=True)
def _rsi(close, period):
    n = len(close)
    out = np.full(n, np.nan)
    if n <= period:
        return out
    gain = 0.0
    loss = 0.0
    for i in range(1, period + 1):
        change = close[i] - close[i - 1]
        if change > 0:
            gain += change
        else:
            loss -= change
    gain /= period
    loss /= period
    out[period] = 100.0 * (gain / (gain + loss)) if gain + loss != 0 else 50.0
    for i in range(period + 1, n):
        change = close[i] - close[i - 1]
        gain *= period - 1
        loss *= period - 1
        if change > 0:
            gain += change
        else:
            loss -= change
        gain /= period
        loss /= period
        out[i] = 100.0 * (gain / (gain + loss)) if gain + loss != 0 else 50.0
    return out


def rsi(close, period: int = 14) -> np.ndarray:
    """Relative Strength Index with Wilder smoothing, exactly as TA-Lib's RSI.

    Average gain/loss are seeded with the simple average of the first ``period`` changes,
    then ``avg = (avg * (period - 1) + change) / period``; ``RSI = 100 * avg_gain /
    (avg_gain + avg_loss)``. First value at index ``period``. One deliberate difference: a
    window with no change at all gives 50 (neutral) where TA-Lib gives 0, so a flat market
    does not look oversold.
    """
    period = _check_window(period)
    if period < 2:
        raise ValueError("rsi period must be at least 2")
    return _rsi(_as_float(close), period)


def rolling_std(x, window: int, ddof: int = 0) -> np.ndarray:
    """Rolling standard deviation over the last ``window`` values; population (``ddof=0``)
    by default, as Bollinger Bands and TA-Lib's STDDEV use. NaN during warm-up.
    """
    x, window = _as_float(x), _check_window(window)
    out = np.full(len(x), np.nan)
    if len(x) >= window and window > ddof:
        out[window - 1:] = sliding_window_view(x, window).std(axis=1, ddof=ddof)
    return out


def rolling_max(x, window: int) -> np.ndarray:
    """Highest value over the last ``window`` values (inclusive of ``t``); NaN during warm-up."""
    x, window = _as_float(x), _check_window(window)
    out = np.full(len(x), np.nan)
    if len(x) >= window:
        out[window - 1:] = sliding_window_view(x, window).max(axis=1)
    return out


def rolling_min(x, window: int) -> np.ndarray:
    """Lowest value over the last ``window`` values (inclusive of ``t``); NaN during warm-up."""
    x, window = _as_float(x), _check_window(window)
    out = np.full(len(x), np.nan)
    if len(x) >= window:
        out[window - 1:] = sliding_window_view(x, window).min(axis=1)
    return out


def macd(close, fast: int = 12, slow: int = 26, signal: int = 9) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MACD: ``line = ema(fast) - ema(slow)``, ``signal_line = ema(line, signal)``,
    ``histogram = line - signal_line``. The line starts at index ``slow - 1``, the signal
    line ``signal - 1`` bars later.
    """
    close = _as_float(close)
    line = ema(close, fast) - ema(close, slow)
    signal_line = ema(line, signal)
    return line, signal_line, line - signal_line


def donchian(high, low, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Donchian channel: (highest high, lowest low) over the last ``window`` bars including
    ``t``. For a breakout test compare the close with ``shift(upper)`` (the channel of the
    bars before ``t``), since the current bar is always inside its own channel.
    """
    return rolling_max(high, window), rolling_min(low, window)


def true_range(high, low, close) -> np.ndarray:
    """``max(high - low, |high - prev_close|, |low - prev_close|)``; NaN at index 0 (as TA-Lib)."""
    high, low, close = _as_float(high), _as_float(low), _as_float(close)
    out = np.full(len(close), np.nan)
    if len(close) > 1:
        prev = close[:-1]
        out[1:] = np.maximum(high[1:] - low[1:],
                             np.maximum(np.abs(high[1:] - prev), np.abs(low[1:] - prev)))
    return out


@jit(nogil=True)
def _wilder_average(x, period, start):
    n = len(x)
    out = np.full(n, np.nan)
    if start + period > n:
        return out
    value = 0.0
    for i in range(start, start + period):
        value += x[i]
    value /= period
    out[start + period - 1] = value
    for i in range(start + period, n):
        value = (value * (period - 1) + x[i]) / period
        out[i] = value
    return out


def atr(high, low, close, period: int = 14) -> np.ndarray:
    """Average True Range with Wilder smoothing seeded by the simple average of the first
    ``period`` true ranges (as TA-Lib). First value at index ``period``.
    """
    return _wilder_average(true_range(high, low, close), _check_window(period), 1)


def shift(x, periods: int = 1) -> np.ndarray:
    """``x`` delayed by ``periods`` bars (value at ``t`` is ``x[t - periods]``), NaN-filled."""
    x = _as_float(x)
    out = np.full(len(x), np.nan)
    if periods < 0:
        raise ValueError("shift only delays (periods >= 0); shifting forward would look ahead")
    if periods < len(x):
        out[periods:] = x[:len(x) - periods]
    return out


@jit(nogil=True)
def _crossed(a, b, up):
    n = a.shape[0]
    out = np.zeros(n, dtype=np.bool_)
    for i in range(1, n):
        if up:
            out[i] = a[i - 1] <= b[i - 1] and a[i] > b[i]
        else:
            out[i] = a[i - 1] >= b[i - 1] and a[i] < b[i]
    return out


@jit(nogil=True)
def _crosses(a, b):
    n = a.shape[0]
    up = np.zeros(n, dtype=np.bool_)
    down = np.zeros(n, dtype=np.bool_)
    for i in range(1, n):
        a0, b0, a1, b1 = a[i - 1], b[i - 1], a[i], b[i]
        up[i] = a0 <= b0 and a1 > b1
        down[i] = a0 >= b0 and a1 < b1
    return up, down


def _pair(a, b) -> tuple[np.ndarray, np.ndarray]:
    a = _as_float(a)
    b = np.full(len(a), float(b)) if np.ndim(b) == 0 else _as_float(b)
    if b.shape != a.shape:
        raise ValueError(f"cannot compare arrays of shapes {a.shape} and {b.shape}")
    return a, b


def crossed_above(a, b) -> np.ndarray:
    """True at ``t`` when ``a[t-1] <= b[t-1]`` and ``a[t] > b[t]`` (strict cross upward).

    ``b`` may be an array or a scalar. False at ``t = 0`` and wherever any of the four
    values is NaN, so a series that starts above never counts as a cross. (A compiled loop:
    the numpy form needs four temporaries and is the hot spot of sweeps.)
    """
    return _crossed(*_pair(a, b), True)


def crosses(a, b) -> tuple[np.ndarray, np.ndarray]:
    """``(crossed_above(a, b), crossed_below(a, b))`` in one pass over the data (crossover
    strategies need both; reading the arrays once is what a sweep's time goes to)."""
    return _crosses(*_pair(a, b))


def crossed_below(a, b) -> np.ndarray:
    """True at ``t`` when ``a[t-1] >= b[t-1]`` and ``a[t] < b[t]`` (strict cross downward).
    NaN-safe like :func:`crossed_above`."""
    return _crossed(*_pair(a, b), False)
