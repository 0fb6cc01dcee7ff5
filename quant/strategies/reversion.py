"""Mean-reversion strategies: rsi_reversion."""

from __future__ import annotations

from . import indicators as ind
from .base import Bars, FloatParam, IntParam, ParameterError, Signals, Strategy, register
from .warmup import wilder_settle_bars


@register
class RsiReversion(Strategy):
    """Buys short-term exhaustion: enter long when the RSI is below ``lower`` (oversold) and
    exit when it rises above ``upper`` (overbought).

    The RSI uses Wilder smoothing seeded by the simple average of the first ``period``
    changes, as TA-Lib. Long only.
    """

    key = "rsi_reversion"
    name = "RSI mean reversion"
    params = (
        IntParam("period", 14, 2, 100, help="RSI lookback in bars."),
        FloatParam("lower", 30.0, 1.0, 50.0, step=1.0, help="Enter long when RSI is below this."),
        FloatParam("upper", 70.0, 50.0, 99.0, step=1.0, help="Exit when RSI is above this."),
    )

    @classmethod
    def check(cls, params):
        if params["lower"] >= params["upper"]:
            raise ParameterError(f"lower: {params['lower']} must be below upper ({params['upper']})")

    @classmethod
    def warmup(cls, params, timeframe):
        return wilder_settle_bars(params["period"])

    @classmethod
    def compute(cls, data: Bars, params, cache):
        rsi = cache.get(("rsi", params["period"]), lambda: ind.rsi(data.close, params["period"]))
        return Signals(entries_long=rsi < params["lower"], exits_long=rsi > params["upper"],
                       info={"rsi": rsi})
