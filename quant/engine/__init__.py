"""TradePulse backtest engine: pure functions over numpy arrays (no Django).

Rules (the README next to this file explains them with examples):

* Signals are read at bar ``t``'s close; the resulting market order fills at bar ``t+1``'s
  open. A signal on the last bar does nothing.
* Slippage worsens every fill: buys at ``price * (1 + slippage)``, sells at
  ``price * (1 - slippage)``. The fee (fraction of notional) is charged on entry and exit.
* Sizes are rounded DOWN to ``amount_step`` so that notional + entry fee fit the budget.
* Stop-loss / take-profit levels are fixed when the entry order is sent, from the signal
  bar's close (or the strategy's own ``stop_price`` / ``take_profit_price`` on that bar),
  and are live from the entry bar on, after the fill at its open. When one bar touches both,
  the stop wins. A level fills at the level, or at the open if the bar opened beyond it.
* The trailing stop trails the highest high (long) / lowest low (short) since the order
  was sent, starting from the signal close; each bar is checked against the level set by
  the bars before it.
* On one bar: exits are processed before entries, so an exit plus an opposite entry
  reverses at the next open. An exit while flat, and an entry while in a position that is
  not exiting, are ignored; an entry and an exit of the same side on one bar cancel.
* Equity is marked at every close. A position open after the last bar is reported in
  ``open_position`` (marked to the last close), not as a trade.

* The rules are small compiled steps over an explicit state (:mod:`quant.engine.core`);
  the backtest is the loop over them and :mod:`quant.engine.stepper` runs the same steps one
  bar at a time (replay, paper, live) with a pre-trade hook between deciding and filling.

Public API: :class:`EngineConfig`, :func:`run`, :class:`EngineResult`,
:func:`trades_as_records`, ``EXIT_REASONS``, ``TRADE_DTYPE``; parameter sweeps in
:mod:`quant.engine.sweep`; bar-by-bar stepping in :mod:`quant.engine.stepper`.
"""

from .config import SIZING_MODES, EngineConfig
from .core import EXIT_REASONS
from .runner import TRADE_DTYPE, EngineResult, run, simulate_arrays, trades_as_records

__all__ = [
    "EXIT_REASONS", "SIZING_MODES", "TRADE_DTYPE", "EngineConfig", "EngineResult", "run",
    "simulate_arrays", "trades_as_records",
]
