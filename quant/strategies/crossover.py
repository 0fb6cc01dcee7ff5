"""Trend-following crossover strategies: sma_cross, ema_cross and macd."""

from __future__ import annotations

from . import indicators as ind
from .base import Bars, IntParam, ParameterError, Signals, Strategy, register
from .warmup import ema_settle_bars


def _cross_signals(fast, slow, info: dict) -> Signals:
    """Long on a strict cross up, out on a strict cross down; shorts mirror it."""
    up, down = ind.crosses(fast, slow)
    return Signals(entries_long=up, exits_long=down, entries_short=down, exits_short=up, info=info)


def _fast_below_slow(params: dict) -> None:
    if params["fast"] >= params["slow"]:
        raise ParameterError(f"fast: {params['fast']} must be below slow ({params['slow']})")


@register
class SmaCross(Strategy):
    """Trend following with two simple moving averages of the close.

    Goes long when the fast average crosses strictly above the slow one (it was at or below
    on the previous bar) and exits when it crosses strictly below. It never enters merely
    because fast is above slow when the data starts. Shorts, when allowed, mirror this.
    """

    key = "sma_cross"
    name = "SMA crossover"
    params = (
        IntParam("fast", 10, 2, 200, help="Bars in the fast simple moving average."),
        IntParam("slow", 30, 3, 500, help="Bars in the slow simple moving average; must exceed fast."),
    )
    supports_short = True

    @classmethod
    def check(cls, params):
        _fast_below_slow(params)

    @classmethod
    def warmup(cls, params, timeframe):
        return params["slow"] + 1

    @classmethod
    def compute(cls, data: Bars, params, cache):
        fast = cache.get(("sma", "close", params["fast"]), lambda: ind.sma(data.close, params["fast"]))
        slow = cache.get(("sma", "close", params["slow"]), lambda: ind.sma(data.close, params["slow"]))
        return _cross_signals(fast, slow, {"fast": fast, "slow": slow})


@register
class EmaCross(Strategy):
    """Trend following with two exponential moving averages of the close.

    Like sma_cross but the averages weight recent bars more, so it reacts sooner and whips
    more. Long on a strict cross of the fast EMA above the slow EMA, exit on the cross back.
    """

    key = "ema_cross"
    name = "EMA crossover"
    params = (
        IntParam("fast", 12, 2, 200, help="Span of the fast exponential moving average."),
        IntParam("slow", 26, 3, 500, help="Span of the slow exponential moving average; must exceed fast."),
    )
    supports_short = True

    @classmethod
    def check(cls, params):
        _fast_below_slow(params)

    @classmethod
    def warmup(cls, params, timeframe):
        # Both EMAs converged on the previous bar too (the cross compares two bars).
        return ema_settle_bars(max(params["fast"], params["slow"])) + 1

    @classmethod
    def compute(cls, data: Bars, params, cache):
        fast = cache.get(("ema", "close", params["fast"]), lambda: ind.ema(data.close, params["fast"]))
        slow = cache.get(("ema", "close", params["slow"]), lambda: ind.ema(data.close, params["slow"]))
        return _cross_signals(fast, slow, {"fast": fast, "slow": slow})


@register
class Macd(Strategy):
    """Momentum from the MACD line (fast EMA minus slow EMA) against its signal line.

    Goes long when the MACD line crosses strictly above its signal line (momentum turning
    up) and exits on the cross back below. Shorts, when allowed, mirror this.
    """

    key = "macd"
    name = "MACD signal cross"
    params = (
        IntParam("fast", 12, 2, 100, help="Span of the fast EMA."),
        IntParam("slow", 26, 3, 300, help="Span of the slow EMA; must exceed fast."),
        IntParam("signal", 9, 2, 100, help="Span of the EMA of the MACD line."),
    )
    supports_short = True

    @classmethod
    def check(cls, params):
        _fast_below_slow(params)

    @classmethod
    def warmup(cls, params, timeframe):
        # The MACD line converges with its slow EMA; the signal line, an EMA seeded on the
        # line, then needs its own settling; plus the previous bar for the cross.
        return ema_settle_bars(params["slow"]) + ema_settle_bars(params["signal"]) + 1

    @classmethod
    def compute(cls, data: Bars, params, cache):
        line, signal_line, hist = cache.get(
            ("macd", params["fast"], params["slow"], params["signal"]),
            lambda: ind.macd(data.close, params["fast"], params["slow"], params["signal"]))
        return _cross_signals(line, signal_line, {"macd": line, "signal": signal_line, "histogram": hist})
