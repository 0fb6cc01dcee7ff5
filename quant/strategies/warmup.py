"""The one warm-up rule: how many bars of history a strategy reads before its first tradable bar.

Every caller uses it: the backtest service loads ``warmup_bars`` stored candles before the
requested start, training gives each walk-forward window (and the hold-out) that many bars
before its start, and the trading loop keeps that many closed bars behind the bar it decides
on. Signals on the warm-up bars themselves never trade (:func:`mask_warmup`,
:func:`drop_warmup`).

What "enough" means
-------------------
* Indicators with a finite window (SMA, rolling std/max/min, Donchian, volume averages, the
  higher-timeframe range) read nothing older than their window: with ``warmup_bars`` bars
  before a bar, that bar's signal is EXACTLY the one computed on the whole history.
* Recursive indicators (EMA, the MACD built from EMAs, Wilder's RSI and ATR) remember every
  bar since their seed with weights that decay geometrically, so their value depends on where
  the data starts. ``warmup_bars`` waits until the seed's weight in the value has fallen below
  :data:`TOLERANCE` (``1e-6``): two computations started at different bars then differ by at
  most ``1e-6`` times the difference of their states at the later start (a fraction of one
  price move, far below any exchange tick), so their signals agree except where two
  indicators are within that distance of each other. An EMA of span ``N`` (``k = 2/(N+1)``)
  needs ``N - 1`` bars to seed and ``ceil(ln(1e-6) / ln(1 - k))`` more
  (:func:`ema_settle_bars`: 205 for 26, 3953 for 500); Wilder's average of period ``N``
  (``alpha = 1/N``) needs ``N`` bars to seed (RSI and ATR start after one price change) and
  ``ceil(ln(1e-6) / ln(1 - 1/N))`` more (:func:`wilder_settle_bars`: 201 for 14).

Each strategy states its need in :meth:`Strategy.warmup` with these helpers; this module's
:func:`warmup_bars` is the entry point callers use.
"""

from __future__ import annotations

import math
from typing import Mapping

import numpy as np

from quant.timeframes import TIMEFRAMES

from .base import Bars, ParameterError, Signals, Strategy, get_strategy

__all__ = ["TOLERANCE", "ema_settle_bars", "wilder_settle_bars", "warmup_bars", "mask_warmup", "drop_warmup",
           "tradable_signals", "warmup_caveats"]

#: Largest weight the seed of a recursive indicator may keep in its value after the warm-up.
TOLERANCE = 1e-6


def _decay_bars(keep: float) -> int:
    """Bars of a recursion ``v = keep * v + (1 - keep) * x`` until the old state weighs <= TOLERANCE."""
    return math.ceil(math.log(TOLERANCE) / math.log(keep))


def ema_settle_bars(span: int) -> int:
    """Bars from the first input until an EMA of ``span`` (seeded with the mean of the first
    ``span`` inputs, as :func:`quant.strategies.indicators.ema`) has converged to TOLERANCE."""
    span = int(span)
    return span - 1 + _decay_bars(1.0 - 2.0 / (span + 1.0))


def wilder_settle_bars(period: int) -> int:
    """Bars from the first price until Wilder's smoothing of ``period`` over price changes
    (RSI, ATR: first value at index ``period``) has converged to TOLERANCE."""
    period = int(period)
    return period + _decay_bars(1.0 - 1.0 / period)


def _strategy(strategy) -> type[Strategy]:
    if isinstance(strategy, type) and issubclass(strategy, Strategy):
        return strategy
    return get_strategy(strategy)


def warmup_bars(strategy: str | type[Strategy], params: Mapping | None = None, timeframe: str | None = None) -> int:
    """Bars of history to read before the first bar whose signal may trade (module docstring).

    ``strategy``: a registered key or a Strategy class; ``params``: validated here (defaults
    filled in, ParameterError for bad ones). ``timeframe`` matters only to strategies that read
    a higher timeframe (``htf_sweep``); without it the result is the largest need over every
    timeframe the strategy can run on, so it is always enough.
    """
    cls = _strategy(strategy)
    validated = cls.validate_params(params)
    if timeframe is not None:
        return int(cls.warmup(validated, timeframe))
    needs = []
    for candidate in TIMEFRAMES:
        try:
            needs.append(int(cls.warmup(validated, candidate)))
        except (ParameterError, ValueError):
            continue  # e.g. htf_sweep's higher timeframe is not above this one
    return max(needs, default=0)


def mask_warmup(signals: Signals, warmup: int) -> Signals:
    """A copy of ``signals`` in which the first ``warmup`` bars cannot trade: no entries or exits,
    no stop or take-profit levels. Later bars are unchanged. ``info`` is kept as it is."""
    warmup = max(0, int(warmup))

    def bools(a):
        if a is None:
            return None
        a = a.copy()
        a[:warmup] = False
        return a

    def levels(a):
        if a is None:
            return None
        a = np.array(a, dtype=np.float64)
        a[:warmup] = np.nan
        return a

    return Signals(entries_long=bools(signals.entries_long), exits_long=bools(signals.exits_long),
                   entries_short=bools(signals.entries_short), exits_short=bools(signals.exits_short),
                   stop_price=levels(signals.stop_price), take_profit_price=levels(signals.take_profit_price),
                   info=signals.info)


def drop_warmup(signals: Signals, warmup: int) -> Signals:
    """The signals from bar ``warmup`` on (views, no copy): what the engine sees when the bars it
    simulates start after the warm-up. ``info`` arrays are cut the same way."""
    warmup = int(warmup)
    if warmup == 0:
        return signals

    def cut(a):
        return None if a is None else a[warmup:]

    return Signals(entries_long=signals.entries_long[warmup:], exits_long=signals.exits_long[warmup:],
                   entries_short=cut(signals.entries_short), exits_short=cut(signals.exits_short),
                   stop_price=cut(signals.stop_price), take_profit_price=cut(signals.take_profit_price),
                   info={k: v[warmup:] for k, v in (signals.info or {}).items()})


def tradable_signals(strategy: str | type[Strategy], bars: Bars, params: Mapping | None = None, *,
                     first: int = 0) -> tuple[Bars, Signals, int, int]:
    """What a run over ``bars[first:]`` trades on, when ``bars[:first]`` is history read before
    its start: signals computed on every bar, none tradable on a bar with fewer than
    ``warmup_bars`` bars before it, cut to ``bars[first:]``.

    Returns ``(bars[first:], signals, warmup, missing)``: ``missing`` is how many bars of the
    run itself had to complete the warm-up (0 when ``first >= warmup``). The backtest service
    and the trading replay both call this, so they trade on the same signals.
    """
    cls = _strategy(strategy)
    params = cls.validate_params(params)
    warmup = warmup_bars(cls, params, bars.timeframe)
    signals = cls.signals(bars, params)
    if warmup > first:
        signals = mask_warmup(signals, warmup)
    traded = bars[first:]
    return traded, drop_warmup(signals, first), warmup, min(max(0, warmup - first), len(traded))


def warmup_caveats(needed: int, missing: int) -> list[dict]:
    """The warning a result carries when its warm-up was not stored before its start:
    ``[{code: "short_warmup", message}]``, empty when ``missing`` is 0.

    ``needed`` bars of history were due before the first traded bar; ``missing`` of them were
    not there, so the first ``missing`` bars of the range only completed the warm-up and could
    not trade (trading on them would use indicators that depend on where the data starts).
    """
    if missing <= 0:
        return []
    return [{"code": "short_warmup", "message": (
        f"Warm-up incomplete: the strategy needs {needed} bars of history before its first trade, but only "
        f"{needed - missing} are stored before the start, so the first {missing} bars of the range only warmed up "
        f"the indicators and could not trade. Download earlier candles or start later to test the whole range.")}]
