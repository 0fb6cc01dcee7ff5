"""Liquidity-sweep strategies: htf_sweep."""

from __future__ import annotations

import numpy as np

from .base import (Bars, BoolParam, CategoricalParam, ParameterError, Signals, Strategy,
                   align_to_base, register, timeframe_ms)


@register
class HtfSweep(Strategy):
    """Fades a sweep of the previous higher-timeframe bar's range.

    When a bar trades below the low of the last CLOSED higher-timeframe bar (say 4h) and
    closes back inside its range, the stops under that low were taken and rejected: go
    long, aiming for that bar's high. A sweep of the high closing back inside is the exit
    (and, when shorts are allowed, the mirror-image short). With ``use_levels`` the entry
    carries a stop at the sweeping bar's extreme and a take-profit at the opposite side.
    """

    key = "htf_sweep"
    provides_stops = True
    name = "Higher-timeframe range sweep"
    params = (
        CategoricalParam("htf", "4h", ("1h", "2h", "4h", "6h", "12h", "1d"),
                         help="Higher timeframe whose previous bar's high/low is watched."),
        BoolParam("use_levels", True, help="Stop at the sweep extreme, take profit at the opposite side of the range."),
    )
    timeframes = ("4h",)
    supports_short = True

    @classmethod
    def warmup(cls, params, timeframe):
        # Data starting just after a higher-timeframe open waits out that partial bar and
        # one full bar: 2 x ratio - 1 base bars until the first complete one has closed.
        return 2 * (timeframe_ms(params["htf"]) // timeframe_ms(timeframe)) - 1

    @staticmethod
    def _previous_range(data: Bars, htf: str) -> tuple[np.ndarray, np.ndarray]:
        """High and low of the last closed ``htf`` bar, per base bar (NaN before the first)."""
        higher = data.resample(htf)
        highs, lows = higher.high.copy(), higher.low.copy()
        if len(higher) and higher.time[0] < data.time[0]:
            # The data starts mid-bar: that first higher bar saw only part of its range.
            highs[0] = lows[0] = np.nan
        return align_to_base(data, higher, highs), align_to_base(data, higher, lows)

    @classmethod
    def compute(cls, data: Bars, params, cache):
        htf = params["htf"]
        if data.bar_ms is None or timeframe_ms(htf) <= data.bar_ms or timeframe_ms(htf) % data.bar_ms:
            raise ParameterError(f"htf: {htf} must be a higher multiple of the data's timeframe {data.timeframe}")
        prev_high, prev_low = cache.get(("htf_range", htf), lambda: cls._previous_range(data, htf))
        close = data.close
        inside = (close > prev_low) & (close < prev_high)
        swept_low = (data.low < prev_low) & inside
        swept_high = (data.high > prev_high) & inside
        ambiguous = swept_low & swept_high  # one bar took both sides: no read on direction
        entries_long, entries_short = swept_low & ~ambiguous, swept_high & ~ambiguous
        stop = target = None
        if params["use_levels"]:
            stop = np.where(entries_long, data.low, np.where(entries_short, data.high, np.nan))
            target = np.where(entries_long, prev_high, np.where(entries_short, prev_low, np.nan))
        return Signals(entries_long=entries_long, exits_long=swept_high,
                       entries_short=entries_short, exits_short=swept_low,
                       stop_price=stop, take_profit_price=target,
                       info={"htf_high": prev_high, "htf_low": prev_low})
