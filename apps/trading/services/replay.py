"""Replay: the trading loop with the PaperBroker over stored candles, at full speed.

Each stored bar goes through what a paper deployment's tick does with it — the PaperBroker
advances the engine state over the bar (filling the orders resting from the previous close by
the backtest's own rules), then each new intent passes the hook and is placed with the broker
as a market order — with the books kept in memory instead of Order/Fill rows, and the signals
computed once over the whole range (as the backtest computes them). Nothing is stored.

The replay's hook approves every intent (the backtest has no pre-trade check), so for every
library strategy the replay's trades equal the backtest's on the same data, parameters and
settings (tests/trading/test_replay.py checks it for each one).

Speed: between a bar whose order was filled and the next bar with a signal, nothing reaches the
broker (no order to place, none resting); such a quiet stretch is advanced by the engine core's
own compiled loop (`core.backtest`, no signals) in one call — the same steps, stops and targets
included — and every other bar is stepped one by one through the PaperBroker.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from quant.engine import EngineConfig, core
from quant.engine.stepper import new_state
from quant.strategies import Bars, get_strategy
from quant.strategies.warmup import mask_warmup, warmup_bars

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
    before it are the signals' history only, as for a deployment's first tick). No bar with
    fewer than the warm-up rule's bars before it trades (quant.strategies.warmup, as the
    backtest: with less history than that, the first bars after `start_index` only warm up).
    `hook(intent, state)` is the pre-trade check (default: approve, as the backtest does).
    Trades have the backtest's record shape (entry/exit times are bar open times in epoch ms)."""
    t0 = time.perf_counter()
    signals = get_strategy(strategy_key).signals(bars, parameters)
    warmup = warmup_bars(strategy_key, parameters, bars.timeframe)
    if warmup > start_index:
        signals = mask_warmup(signals, warmup)
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
    flagged_at = np.flatnonzero(any_flag)
    no_signal = np.zeros(n, dtype=bool)
    no_level = np.empty(0)
    equity_buf = np.empty(n)
    trade_buf = np.empty((n, core.TRADE_COLUMNS))
    i = start_index
    while i < n:
        if not flagged[i] and values[core.S_PEND_EXIT] == 0.0 and values[core.S_PEND_ENTRY] == 0.0:
            # a quiet stretch: no signal and no order to place or fill until the next flagged bar,
            # so nothing reaches the broker; the engine core's own compiled loop advances it
            at = np.searchsorted(flagged_at, i)
            j = int(flagged_at[at]) if at < len(flagged_at) else n  # the flagged bar is stepped below
            if j > i:
                fills_before, trades_before = int(values[core.S_N_FILLS]), int(values[core.S_N_TRADES])
                core.backtest(bars.open[i:j], bars.high[i:j], bars.low[i:j], bars.close[i:j], no_signal[i:j],
                              no_signal[i:j], no_signal[:0], no_signal[:0], no_level, no_level, state.cfg, values,
                              equity_buf[i:j], trade_buf)
                for k in range(int(values[core.S_N_TRADES]) - trades_before):
                    trades.append(_trade_record(trade_buf[k], i, times))
                fills += int(values[core.S_N_FILLS]) - fills_before
                state.bar = j
                state.last_close = closes[j - 1]
                i = j
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
        i += 1
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


def _trade_record(row, offset: int, times: list[int]) -> dict:
    """A trade the compiled loop closed in a stretch starting at bar `offset` (its exit index is
    local to the stretch), in the stepper's record shape."""
    entry_index, exit_index = int(row[core.COL_ENTRY_INDEX]), int(row[core.COL_EXIT_INDEX]) + offset
    return {"entry_index": entry_index, "exit_index": exit_index, "entry_time": times[entry_index],
            "exit_time": times[exit_index], "entry_price": float(row[core.COL_ENTRY_PRICE]),
            "exit_price": float(row[core.COL_EXIT_PRICE]), "size": float(row[core.COL_SIZE]),
            "fees": float(row[core.COL_FEES]), "pnl": float(row[core.COL_PNL]), "return": float(row[core.COL_RETURN]),
            "exit_reason": core.EXIT_REASONS[int(row[core.COL_REASON])],
            "side": "long" if row[core.COL_SIDE] > 0 else "short"}


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
