"""Breakout strategies: bollinger_breakout, volume_breakout and donchian_breakout."""

from __future__ import annotations

import numpy as np

from . import indicators as ind
from .base import Bars, FloatParam, IntParam, Signals, Strategy, register
from .warmup import wilder_settle_bars


@register
class BollingerBreakout(Strategy):
    """Volatility breakout on Bollinger Bands (SMA of the close ± k population std devs).

    Goes long when the close crosses strictly above the upper band (a move large for the
    recent volatility) and exits when it crosses back below the middle band. Shorts, when
    allowed, mirror this on the lower band.
    """

    key = "bollinger_breakout"
    name = "Bollinger Band breakout"
    params = (
        IntParam("period", 20, 5, 200, help="Bars in the moving average and standard deviation."),
        FloatParam("k", 2.0, 0.5, 4.0, step=0.1, help="Band width in standard deviations."),
    )
    supports_short = True

    @classmethod
    def warmup(cls, params, timeframe):
        return params["period"] + 1

    @classmethod
    def compute(cls, data: Bars, params, cache):
        period, k = params["period"], params["k"]
        middle = cache.get(("sma", "close", period), lambda: ind.sma(data.close, period))
        std = cache.get(("std", "close", period), lambda: ind.rolling_std(data.close, period))
        upper, lower = middle + k * std, middle - k * std
        close = data.close
        return Signals(
            entries_long=ind.crossed_above(close, upper),
            exits_long=ind.crossed_below(close, middle),
            entries_short=ind.crossed_below(close, lower),
            exits_short=ind.crossed_above(close, middle),
            info={"middle": middle, "upper": upper, "lower": lower},
        )


@register
class VolumeBreakout(Strategy):
    """Breakouts confirmed by participation.

    Enter long when the close breaks above the highest high of the previous ``period`` bars
    on volume above ``volume_mult`` times the average volume of those bars; exit when the
    close falls below the lowest low of the previous ``exit_period`` bars. Long only.
    """

    key = "volume_breakout"
    name = "Volume-confirmed breakout"
    params = (
        IntParam("period", 20, 5, 200, help="Bars defining the range to break and the average volume."),
        FloatParam("volume_mult", 2.0, 1.0, 10.0, step=0.1, help="Volume must exceed this multiple of its average."),
        IntParam("exit_period", 10, 2, 200, help="Exit below the lowest low of this many previous bars."),
    )

    @classmethod
    def warmup(cls, params, timeframe):
        return max(params["period"], params["exit_period"]) + 1

    @classmethod
    def compute(cls, data: Bars, params, cache):
        period, exit_period = params["period"], params["exit_period"]
        prior_high = cache.get(("prior_max", "high", period), lambda: ind.shift(ind.rolling_max(data.high, period)))
        prior_low = cache.get(("prior_min", "low", exit_period), lambda: ind.shift(ind.rolling_min(data.low, exit_period)))
        prior_volume = cache.get(("prior_sma", "volume", period), lambda: ind.shift(ind.sma(data.volume, period)))
        entries = (data.close > prior_high) & (data.volume > params["volume_mult"] * prior_volume)
        return Signals(entries_long=entries, exits_long=data.close < prior_low,
                       info={"range_high": prior_high, "exit_low": prior_low, "avg_volume": prior_volume})


@register
class DonchianBreakout(Strategy):
    """Turtle-style channel breakout.

    Enter long when the close exceeds the highest high of the previous ``entry_period``
    bars; exit when it falls below the lowest low of the previous ``exit_period`` bars.
    With ``atr_stop`` > 0 each entry carries a stop ``atr_stop`` ATRs from the signal close.
    Shorts, when allowed, mirror this.
    """

    key = "donchian_breakout"
    provides_stops = True
    name = "Donchian channel breakout"
    params = (
        IntParam("entry_period", 20, 5, 200, help="Break the channel of this many previous bars to enter."),
        IntParam("exit_period", 10, 2, 200, help="Exit on a break of the opposite channel of this many bars."),
        FloatParam("atr_stop", 0.0, 0.0, 10.0, step=0.5, help="Stop distance in ATRs from the signal close; 0 = none."),
        IntParam("atr_period", 20, 2, 100, help="ATR lookback for the stop."),
    )
    supports_short = True

    @classmethod
    def warmup(cls, params, timeframe):
        needed = max(params["entry_period"], params["exit_period"]) + 1
        # With ATR stops the stop level is a recursive (Wilder) value: wait for it to settle.
        return max(needed, wilder_settle_bars(params["atr_period"])) if params["atr_stop"] > 0 else needed

    @classmethod
    def compute(cls, data: Bars, params, cache):
        n_in, n_out = params["entry_period"], params["exit_period"]
        entry_high = cache.get(("prior_max", "high", n_in), lambda: ind.shift(ind.rolling_max(data.high, n_in)))
        entry_low = cache.get(("prior_min", "low", n_in), lambda: ind.shift(ind.rolling_min(data.low, n_in)))
        exit_high = cache.get(("prior_max", "high", n_out), lambda: ind.shift(ind.rolling_max(data.high, n_out)))
        exit_low = cache.get(("prior_min", "low", n_out), lambda: ind.shift(ind.rolling_min(data.low, n_out)))
        close = data.close
        entries_long, entries_short = close > entry_high, close < entry_low
        info = {"entry_high": entry_high, "entry_low": entry_low, "exit_high": exit_high, "exit_low": exit_low}
        stop = None
        if params["atr_stop"] > 0:
            atr = cache.get(("atr", params["atr_period"]),
                            lambda: ind.atr(data.high, data.low, close, params["atr_period"]))
            distance = params["atr_stop"] * atr
            stop = np.where(entries_long, close - distance, np.where(entries_short, close + distance, np.nan))
            # An entry whose ATR is still warming up would have no stop; skip it instead.
            entries_long &= ~np.isnan(atr)
            entries_short &= ~np.isnan(atr)
            info["atr"] = atr
        return Signals(entries_long=entries_long, exits_long=close < exit_low,
                       entries_short=entries_short, exits_short=close > exit_high,
                       stop_price=stop, info=info)
