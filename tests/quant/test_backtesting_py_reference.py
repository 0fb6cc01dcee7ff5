"""Our engine against an independent implementation: backtesting.py (kernc/backtesting.py 0.6.6).

Each case runs the same strategy idea twice on the same candles: through ``quant.engine.run``
with our library strategy's signals, and through ``backtesting.Backtest`` with a
``backtesting.Strategy`` that computes its own indicators (pandas rolling windows for SMA,
Bollinger, Donchian and volume averages; ``backtesting.lib.crossover`` for the crosses) and
places its own orders. The trades must be the same, one for one: entry and exit bar, side,
entry and exit price, size, and PnL.

Conventions aligned (and why)
-----------------------------
* Orders decided at bar t's close fill at bar t+1's open in both (backtesting.py's default,
  ``trade_on_close=False``).
* Sizing: backtesting.py buys whole units with a fraction (< 1) of the available margin, the
  commission included in the unit cost; we use ``sizing="fraction"``, ``size_value=0.9999``
  (backtesting.py's default ``size``) and ``amount_step=1`` (whole units). Both size on the
  cash after any exit filled at the same open.
* Fees: backtesting.py's relative ``commission`` is charged on the entry and on the exit
  notional, as our ``fee``. Its trade ``PnL`` is net of both, as ours.
* Slippage: none on either side. backtesting.py's ``spread`` worsens the ENTRY price only
  (exits fill at the raw price), our ``slippage`` worsens every fill: a real convention
  difference, so it is left out of the comparison (tests/quant/test_engine.py covers ours).
* Stops and targets: levels from the signal bar's close (``close * (1 - stop_loss)`` for a
  long), live in the entry bar after the fill at the open; a level fills at the level or at
  the open when the bar gapped through it; when one bar touches both, the stop wins
  (backtesting.py processes SL orders first). Trailing stops are not compared:
  backtesting.py has none of its own (``lib.TrailingStrategy`` trails by ATR at closes, a
  different rule).
* Reversals: on a bar that exits one side and enters the other, backtesting.py's strategy
  closes the position first and then orders the new side, as our engine does.
* Positions still open after the last bar are not trades in either (``finalize_trades=False``).
* backtesting.py calls ``next()`` only once its indicators are defined, while ours sees every
  bar: on bars where an indicator is NaN neither can signal, so this changes nothing.
* ema_cross, macd and rsi_reversion feed backtesting.py OUR indicator arrays (EMA/MACD/RSI
  are checked against TA-Lib's definitions in tests/quant/test_library.py); the decisions,
  orders and fills are still backtesting.py's.

Tolerance: bars, sides and sizes exactly; prices to 1e-12 relative (the same float
operations, different order); PnL to 1e-9 absolute on a 10,000 account.
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

backtesting = pytest.importorskip("backtesting")
from backtesting import Backtest, Strategy as BtStrategy  # noqa: E402
from backtesting.lib import crossover  # noqa: E402

from quant.engine import EngineConfig, run as engine_run  # noqa: E402
from quant.strategies import Bars, get_strategy  # noqa: E402
from quant.strategies import indicators as ind  # noqa: E402

HOUR = 3_600_000
T0 = 1_700_000_000_000 - 1_700_000_000_000 % HOUR
CASH = 10_000.0


def candles(n: int = 1500, seed: int = 11) -> Bars:
    """A seeded random walk with occasional gaps at the open (built for the test, not market
    data), so stops and targets sometimes fill at a gapped open."""
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.012, n)))
    gap = np.where(rng.random(n) < 0.05, rng.normal(0, 0.02, n), rng.normal(0, 0.001, n))
    opens = np.r_[close[0], close[:-1]] * (1 + gap)
    high = np.maximum(opens, close) * (1 + rng.uniform(0, 0.008, n))
    low = np.minimum(opens, close) * (1 - rng.uniform(0, 0.008, n))
    volume = rng.lognormal(0, 0.6, n)
    return Bars(T0 + np.arange(n, dtype=np.int64) * HOUR, opens, high, low, close, volume, "1h")


def frame(bars: Bars) -> pd.DataFrame:
    index = pd.to_datetime(bars.time, unit="ms", utc=True).tz_localize(None)
    return pd.DataFrame({"Open": bars.open, "High": bars.high, "Low": bars.low, "Close": bars.close,
                         "Volume": bars.volume}, index=index)


# --------------------------------------------------------------------------- backtesting.py side

class Reference(BtStrategy):
    """Orders as our engine's rules say, from ``signals(self)`` -> (enter long, exit long,
    enter short, exit short) at the current bar, computed by the subclass."""

    allow_short = False
    stop_loss = None
    take_profit = None

    def signals(self):
        raise NotImplementedError

    def levels(self, side: int):
        close = self.data.Close[-1]
        sl = tp = None
        if self.stop_loss:
            sl = close * (1 - side * self.stop_loss)
        if self.take_profit:
            tp = close * (1 + side * self.take_profit)
        return sl, tp

    def next(self):
        enter_long, exit_long, enter_short, exit_short = self.signals()
        if not self.allow_short:
            enter_short = exit_short = False
        position = self.position
        flat = not position
        if position.is_long and exit_long and not enter_long:
            position.close()
            flat = True
        elif position.is_short and exit_short and not enter_short:
            position.close()
            flat = True
        if not flat or (enter_long and enter_short):
            return
        if enter_long and not exit_long:
            sl, tp = self.levels(+1)
            self.buy(size=0.9999, sl=sl, tp=tp)
        elif enter_short and not exit_short:
            sl, tp = self.levels(-1)
            self.sell(size=0.9999, sl=sl, tp=tp)


def _series(values):
    return pd.Series(np.asarray(values, dtype=float))


class SmaCrossRef(Reference):
    fast = 10
    slow = 30

    def init(self):
        close = _series(self.data.Close)
        self.a = self.I(lambda: close.rolling(self.fast).mean().to_numpy())
        self.b = self.I(lambda: close.rolling(self.slow).mean().to_numpy())

    def signals(self):
        up, down = crossover(self.a, self.b), crossover(self.b, self.a)
        return up, down, down, up


class BollingerRef(Reference):
    period = 20
    k = 2.0

    def init(self):
        close = _series(self.data.Close)
        mid = close.rolling(self.period).mean()
        std = close.rolling(self.period).std(ddof=0)
        self.close = self.I(lambda: close.to_numpy())
        self.mid = self.I(lambda: mid.to_numpy())
        self.upper = self.I(lambda: (mid + self.k * std).to_numpy())
        self.lower = self.I(lambda: (mid - self.k * std).to_numpy())

    def signals(self):
        return (crossover(self.close, self.upper), crossover(self.mid, self.close),
                crossover(self.lower, self.close), crossover(self.close, self.mid))


class DonchianRef(Reference):
    entry_period = 20
    exit_period = 10

    def init(self):
        high, low = _series(self.data.High), _series(self.data.Low)
        self.entry_high = self.I(lambda: high.rolling(self.entry_period).max().shift(1).to_numpy())
        self.entry_low = self.I(lambda: low.rolling(self.entry_period).min().shift(1).to_numpy())
        self.exit_high = self.I(lambda: high.rolling(self.exit_period).max().shift(1).to_numpy())
        self.exit_low = self.I(lambda: low.rolling(self.exit_period).min().shift(1).to_numpy())

    def signals(self):
        close = self.data.Close[-1]
        return (close > self.entry_high[-1], close < self.exit_low[-1],
                close < self.entry_low[-1], close > self.exit_high[-1])


class VolumeBreakoutRef(Reference):
    period = 20
    volume_mult = 2.0
    exit_period = 10

    def init(self):
        high, low, volume = _series(self.data.High), _series(self.data.Low), _series(self.data.Volume)
        self.range_high = self.I(lambda: high.rolling(self.period).max().shift(1).to_numpy())
        self.exit_low = self.I(lambda: low.rolling(self.exit_period).min().shift(1).to_numpy())
        self.avg_volume = self.I(lambda: volume.rolling(self.period).mean().shift(1).to_numpy())

    def signals(self):
        close, volume = self.data.Close[-1], self.data.Volume[-1]
        entry = close > self.range_high[-1] and volume > self.volume_mult * self.avg_volume[-1]
        return entry, close < self.exit_low[-1], False, False


class EmaCrossRef(Reference):
    fast = 12
    slow = 26

    def init(self):
        close = np.asarray(self.data.Close, dtype=float)
        self.a = self.I(ind.ema, close, self.fast)
        self.b = self.I(ind.ema, close, self.slow)

    def signals(self):
        up, down = crossover(self.a, self.b), crossover(self.b, self.a)
        return up, down, down, up


class MacdRef(Reference):
    fast = 12
    slow = 26
    signal = 9

    def init(self):
        line, signal_line, _ = ind.macd(np.asarray(self.data.Close, dtype=float), self.fast, self.slow, self.signal)
        self.line = self.I(lambda: line)
        self.signal_line = self.I(lambda: signal_line)

    def signals(self):
        up, down = crossover(self.line, self.signal_line), crossover(self.signal_line, self.line)
        return up, down, down, up


class RsiRef(Reference):
    period = 14
    lower = 30.0
    upper = 70.0

    def init(self):
        self.rsi = self.I(ind.rsi, np.asarray(self.data.Close, dtype=float), self.period)

    def signals(self):
        return self.rsi[-1] < self.lower, self.rsi[-1] > self.upper, False, False


# (id, our strategy key, its params, reference class, engine settings)
CASES = [
    ("sma-long-fee", "sma_cross", {"fast": 10, "slow": 30}, SmaCrossRef, dict(fee=0.001)),
    ("sma-long-short", "sma_cross", {"fast": 10, "slow": 30}, SmaCrossRef, dict(fee=0.001, allow_short=True)),
    ("sma-no-fee", "sma_cross", {"fast": 5, "slow": 20}, SmaCrossRef, dict(fee=0.0, allow_short=True)),
    ("sma-stop-target", "sma_cross", {"fast": 10, "slow": 30}, SmaCrossRef,
     dict(fee=0.001, stop_loss=0.02, take_profit=0.04)),
    ("sma-short-stop-target", "sma_cross", {"fast": 8, "slow": 40}, SmaCrossRef,
     dict(fee=0.0005, stop_loss=0.015, take_profit=0.03, allow_short=True)),
    ("sma-tight-stop", "sma_cross", {"fast": 10, "slow": 30}, SmaCrossRef, dict(fee=0.002, stop_loss=0.005)),
    ("bollinger-long-short", "bollinger_breakout", {"period": 20, "k": 2.0}, BollingerRef,
     dict(fee=0.001, allow_short=True)),
    ("bollinger-stops", "bollinger_breakout", {"period": 15, "k": 1.5}, BollingerRef,
     dict(fee=0.001, stop_loss=0.01, take_profit=0.02, allow_short=True)),
    ("donchian-long-short", "donchian_breakout", {"entry_period": 20, "exit_period": 10}, DonchianRef,
     dict(fee=0.001, allow_short=True)),
    ("donchian-stop", "donchian_breakout", {"entry_period": 30, "exit_period": 15}, DonchianRef,
     dict(fee=0.001, stop_loss=0.03, allow_short=True)),
    ("volume-breakout", "volume_breakout", {"period": 20, "volume_mult": 1.5, "exit_period": 10}, VolumeBreakoutRef,
     dict(fee=0.001)),
    ("volume-breakout-target", "volume_breakout", {"period": 10, "volume_mult": 1.2, "exit_period": 5},
     VolumeBreakoutRef, dict(fee=0.001, take_profit=0.02)),
    ("ema-long-short", "ema_cross", {"fast": 12, "slow": 26}, EmaCrossRef, dict(fee=0.001, allow_short=True)),
    ("macd-stops", "macd", {"fast": 12, "slow": 26, "signal": 9}, MacdRef,
     dict(fee=0.001, stop_loss=0.02, take_profit=0.05, allow_short=True)),
    ("rsi-long", "rsi_reversion", {"period": 14, "lower": 30, "upper": 70}, RsiRef, dict(fee=0.001)),
    ("rsi-stop", "rsi_reversion", {"period": 7, "lower": 25, "upper": 60}, RsiRef, dict(fee=0.001, stop_loss=0.02)),
]


def reference_trades(bars: Bars, ref: type[Reference], params: dict, settings: dict) -> pd.DataFrame:
    test = Backtest(frame(bars), ref, cash=CASH, commission=settings.get("fee", 0.0), spread=0.0,
                    trade_on_close=False, exclusive_orders=False, finalize_trades=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "some trades remain open": they are not trades in either
        stats = test.run(allow_short=settings.get("allow_short", False), stop_loss=settings.get("stop_loss"),
                         take_profit=settings.get("take_profit"), **params)
    return stats["_trades"]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_engine_reproduces_backtesting_py_trade_for_trade(case):
    _, key, params, ref, settings = case
    bars = candles()
    ours = engine_run(bars, get_strategy(key).signals(bars, params),
                      EngineConfig(cash=CASH, sizing="fraction", size_value=0.9999, amount_step=1.0, **settings)).trades
    theirs = reference_trades(bars, ref, params, settings)
    assert len(theirs) >= 5, "too few trades for a meaningful comparison"
    assert len(ours) == len(theirs)
    # backtesting.py lists trades in exit order too; a reversal exits then enters on one bar.
    np.testing.assert_array_equal(ours["entry_index"], theirs["EntryBar"].to_numpy())
    np.testing.assert_array_equal(ours["exit_index"], theirs["ExitBar"].to_numpy())
    np.testing.assert_array_equal(ours["side"] * ours["size"], theirs["Size"].to_numpy())
    np.testing.assert_allclose(ours["entry_price"], theirs["EntryPrice"].to_numpy(), rtol=1e-12)
    np.testing.assert_allclose(ours["exit_price"], theirs["ExitPrice"].to_numpy(), rtol=1e-12)
    np.testing.assert_allclose(ours["pnl"], theirs["PnL"].to_numpy(), rtol=0, atol=1e-9)
    np.testing.assert_allclose(ours["fees"], theirs["Commission"].to_numpy(), rtol=0, atol=1e-9)


def test_the_cases_cover_stops_targets_gaps_and_both_sides():
    """The comparison is only as good as what the cases exercise: at least one stop-loss exit,
    one take-profit exit, one stop filled at a gapped open, and long and short trades."""
    bars = candles()
    reasons, sides, gapped = set(), set(), 0
    for _, key, params, _, settings in CASES:
        result = engine_run(bars, get_strategy(key).signals(bars, params),
                            EngineConfig(cash=CASH, size_value=0.9999, amount_step=1.0, **settings))
        trades = result.trades
        reasons |= set(trades["exit_reason"].tolist())
        sides |= set(trades["side"].tolist())
        stopped = trades[trades["exit_reason"] == 1]
        gapped += int(np.sum(stopped["exit_price"] == bars.open[stopped["exit_index"]]))
    assert {0, 1, 2} <= reasons and sides == {-1, 1} and gapped > 0
