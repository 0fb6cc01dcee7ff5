"""Replay: the trading loop with the PaperBroker over stored candles, at full speed.

Each stored bar goes through what a paper deployment's tick does with it — the PaperBroker
advances the engine state over the bar (filling the orders resting from the previous close by
the backtest's own rules), then each new intent passes the hook and is placed with the broker
as a market order — with the books kept in memory instead of Order/Fill rows, and the signals
computed once over the whole range (as the backtest computes them). Nothing is stored.

The replay's hook approves every intent (the backtest has no pre-trade check), so for every
library strategy the replay's trades equal the backtest's on the same data, parameters and
settings (tests/trading/test_replay.py checks it for each one).

Speed: a bar with no signal, no pending order and no position cannot change anything but the
bar counter, so the loop only advances the counter for it (the engine core would do exactly
that); every other bar is stepped by the engine core.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from quant.engine import EngineConfig, core
from quant.engine.stepper import new_state
from quant.strategies import Bars, get_strategy

from ..brokers.base import OrderRequest, client_order_id
from ..brokers.paper import PaperBroker, to_decimal
from .engine import SIGNAL_KEYS

REPLAY_DEPLOYMENT_ID = 0  # client order ids of a replay: tp-0-<bar>-<intent>


@dataclass
class ReplayResult:
    trades: list[dict]
    open_position: dict | None
    final_equity: float
    orders: int
    fills: int
    bars: int
    skipped_entries: int
    timings: dict = field(default_factory=dict)


def replay(bars: Bars, strategy_key: str, parameters: dict, config: EngineConfig, *, hook=None,
           symbol: str = "BASE/QUOTE", start_index: int = 0) -> ReplayResult:
    """Run the paper loop over `bars` with `strategy_key(parameters)` and `config`.

    Signals are computed over all `bars`; the engine starts flat at bar `start_index` (the bars
    before it are the signals' history only, as for a deployment's first tick).
    `hook(intent, state)` is the pre-trade check (default: approve, as the backtest does).
    Trades have the backtest's record shape (entry/exit times are bar open times in epoch ms)."""
    t0 = time.perf_counter()
    signals = get_strategy(strategy_key).signals(bars, parameters)
    t1 = time.perf_counter()
    state = new_state(config)
    broker = PaperBroker(None, symbol=symbol)
    n = len(bars)
    opens, highs, lows, closes = (a.tolist() for a in (bars.open, bars.high, bars.low, bars.close))
    times = bars.time.tolist()
    flags = [getattr(signals, k) for k in SIGNAL_KEYS[:4]]
    any_flag = np.zeros(n, dtype=bool)
    for a in flags:
        if a is not None:
            any_flag |= np.asarray(a, dtype=bool)
    any_flag[-1:] = False  # a signal on the last bar does nothing (no next open), as in the backtest
    flagged = any_flag.tolist()
    levels = {k: getattr(signals, k) for k in SIGNAL_KEYS}
    values = state.values
    trades: list[dict] = []
    fills = 0
    orders = 0

    def place(intent, st):
        nonlocal orders
        answer = hook(intent, st) if hook is not None else intent
        if answer is None:
            return None
        orders += 1
        amount = intent.estimated_amount if intent.kind == "entry" else st.size
        broker.place_order(OrderRequest(
            client_order_id=client_order_id(REPLAY_DEPLOYMENT_ID, current[0], 0 if intent.kind == "exit" else 1),
            symbol=symbol, side=intent.direction, amount=to_decimal(amount)))
        return answer

    current = [0]
    state.bar = start_index
    for i in range(start_index, n):
        if not flagged[i] and values[core.S_SIDE] == 0.0 and values[core.S_PEND_EXIT] == 0.0 \
                and values[core.S_PEND_ENTRY] == 0.0:
            state.bar += 1  # flat, nothing pending, no signal: the engine would only count the bar
            state.last_close = closes[i]
            continue
        current[0] = times[i]
        row = None
        if flagged[i]:
            row = {k: v[i].item() for k, v in levels.items() if v is not None}
        result, settled, unmatched = broker.execute_bar(state, (opens[i], highs[i], lows[i], closes[i]), row,
                                                        hook=place, bar_time=times[i])
        fills += len(result.fills)
        if result.trades:
            trades += result.trades
    t2 = time.perf_counter()
    last_close = closes[-1] if n else math.nan
    open_position = _open_position(state, last_close, times) if n else None
    equity = state.equity  # cash + the position marked at the last close (the backtest's equity[-1])
    for t in trades:
        t.pop("entry_index", None)
        t.pop("exit_index", None)
    return ReplayResult(trades=trades, open_position=open_position, final_equity=float(equity), orders=orders,
                        fills=fills, bars=n, skipped_entries=state.skipped_entries,
                        timings={"signals_s": t1 - t0, "loop_s": t2 - t1})


def _open_position(state, close: float, times: list[int]) -> dict | None:
    """The position left open after the last bar in the backtest's `open_position` shape."""
    if state.side is None:
        return None
    summary = core.summary(state.values, state.cfg)
    side = 1 if state.side == "long" else -1
    entry_index = int(state.values[core.S_ENTRY_INDEX])
    entry_fee = float(state.values[core.S_ENTRY_FEE])
    return {"side": state.side, "entry_index": entry_index,
            "entry_time": times[entry_index] if 0 <= entry_index < len(times) else None,
            "entry_price": state.entry_price, "size": state.size, "entry_fee": entry_fee,
            "mark_price": close, "unrealized_pnl": float(side * state.size * (close - state.entry_price) - entry_fee),
            "stop_loss": _nan_none(summary[8]), "take_profit": _nan_none(summary[9]),
            "trailing_stop": _nan_none(summary[10])}


def _nan_none(x: float) -> float | None:
    return None if math.isnan(x) else float(x)


__all__ = ["replay", "ReplayResult"]
