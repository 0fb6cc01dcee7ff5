"""``run()``: validate inputs, call the compiled loop, and shape its output."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from quant.strategies.base import Bars, Signals

from . import core
from .config import EngineConfig

TRADE_DTYPE = np.dtype([
    ("entry_index", np.int64), ("exit_index", np.int64),
    ("entry_time", np.int64), ("exit_time", np.int64),
    ("side", np.int8),  # +1 long, -1 short
    ("entry_price", np.float64), ("exit_price", np.float64), ("size", np.float64),
    ("fees", np.float64), ("pnl", np.float64), ("return", np.float64),
    ("exit_reason", np.int8),  # key of EXIT_REASONS
])

_NO_BOOLS = np.zeros(0, dtype=np.bool_)
_NO_FLOATS = np.zeros(0, dtype=np.float64)


@dataclass
class EngineResult:
    """Outcome of one simulation.

    trades          structured array (TRADE_DTYPE) of CLOSED trades, in exit order. Prices
                    are fills (slippage included); ``fees`` = entry fee + exit fee; ``pnl``
                    is net of both fees; ``return`` = pnl / (size x entry_price + entry fee);
                    times are the open times (epoch ms) of the entry and exit bars.
    open_position   None, or a dict describing the position still open after the last bar
                    (marked to the last close; not a trade, no exit fee charged).
    equity          float64 per bar: cash plus open position marked at that bar's close.
    exposure        fraction of bars during which a position was held at some point.
    final_equity    equity at the last close.
    skipped_entries entry signals that produced no order (size rounded to 0, below
                    min_amount, no usable stop for risk sizing, no cash).
    """

    trades: np.ndarray
    open_position: dict | None
    equity: np.ndarray
    exposure: float
    final_equity: float
    initial_cash: float
    time: np.ndarray
    timeframe: str | None
    skipped_entries: int
    config: EngineConfig

    @property
    def n_bars(self) -> int:
        """Number of bars simulated."""
        return len(self.equity)


def _prices(data) -> tuple[np.ndarray, ...]:
    """(time, open, high, low, close, timeframe) from Bars, a mapping or a DataFrame-like."""
    if isinstance(data, Bars):
        return data.time, data.open, data.high, data.low, data.close, data.timeframe
    try:
        columns = [np.ascontiguousarray(data[k], dtype=np.float64) for k in ("open", "high", "low", "close")]
    except (KeyError, TypeError, IndexError):
        raise TypeError("run() needs Bars or a mapping with open, high, low and close arrays") from None
    n = len(columns[0])
    if any(len(c) != n for c in columns):
        raise ValueError("open, high, low and close must have the same length")
    try:
        time = np.ascontiguousarray(data["time"], dtype=np.int64)
    except (KeyError, IndexError):
        time = np.arange(n, dtype=np.int64)
    timeframe = data.get("timeframe") if isinstance(data, Mapping) else None
    return (time, *columns, timeframe)


def _signal_arrays(signals: Signals, n: int, allow_short: bool):
    signals.check(n)
    short = allow_short and signals.entries_short is not None and signals.exits_short is not None
    return (
        signals.entries_long, signals.exits_long,
        signals.entries_short if short else _NO_BOOLS,
        signals.exits_short if short else _NO_BOOLS,
        signals.stop_price if signals.stop_price is not None else _NO_FLOATS,
        signals.take_profit_price if signals.take_profit_price is not None else _NO_FLOATS,
    )


def _nan_if_none(value) -> float:
    return math.nan if value is None else float(value)


def simulate_arrays(open_, high, low, close, signals: Signals, config: EngineConfig,
                    equity: np.ndarray | None = None, trades: np.ndarray | None = None):
    """Call the compiled loop with validated arrays; return ``(state, equity, trade_buffer)``.

    Lower-level than :func:`run` (no trade log shaping); used by the sweep. ``equity`` and
    ``trades`` may be passed in to reuse buffers.
    """
    n = len(close)
    if n == 0:
        raise ValueError("cannot backtest zero bars")
    arrays = _signal_arrays(signals, n, config.allow_short)
    if config.sizing == "risk" and config.stop_loss is None and config.trailing_stop is None \
            and signals.stop_price is None:
        raise ValueError("risk sizing needs a stop: set stop_loss or trailing_stop, "
                         "or use a strategy that provides stop prices")
    if equity is None:
        equity = np.empty(n)
    if trades is None:
        # Untouched rows cost no memory: the OS maps pages only when a trade is written.
        trades = np.empty((n, core.TRADE_COLUMNS))
    if equity.shape != (n,) or trades.shape[0] < n or trades.shape[1] != core.TRADE_COLUMNS:
        raise ValueError("equity must have n entries and trades at least n rows of TRADE_COLUMNS")
    state = core.simulate(
        open_, high, low, close, *arrays,
        float(config.cash), float(config.fee), float(config.slippage),
        core.SIZING_CODES[config.sizing], float(config.size_value), float(config.amount_step),
        float(config.min_amount), _nan_if_none(config.stop_loss), _nan_if_none(config.take_profit),
        _nan_if_none(config.trailing_stop), bool(config.allow_short), equity, trades,
        float(config.price_step), float(config.min_notional))
    return state, equity, trades


def _trade_log(buffer: np.ndarray, count: int, time: np.ndarray) -> np.ndarray:
    rows = buffer[:count]
    out = np.empty(count, dtype=TRADE_DTYPE)
    out["entry_index"] = rows[:, core.COL_ENTRY_INDEX]
    out["exit_index"] = rows[:, core.COL_EXIT_INDEX]
    out["entry_time"] = time[out["entry_index"]]
    out["exit_time"] = time[out["exit_index"]]
    out["side"] = rows[:, core.COL_SIDE]
    out["entry_price"] = rows[:, core.COL_ENTRY_PRICE]
    out["exit_price"] = rows[:, core.COL_EXIT_PRICE]
    out["size"] = rows[:, core.COL_SIZE]
    out["fees"] = rows[:, core.COL_FEES]
    out["pnl"] = rows[:, core.COL_PNL]
    out["return"] = rows[:, core.COL_RETURN]
    out["exit_reason"] = rows[:, core.COL_REASON]
    return out


def _open_position(state, time: np.ndarray, close: np.ndarray) -> dict | None:
    (_, _, _, side, entry_index, entry_price, size, entry_fee, sl, tp, trail) = state
    if side == 0:
        return None
    mark = float(close[-1])

    def level(x):
        return None if math.isnan(x) else float(x)

    return {
        "side": "long" if side > 0 else "short",
        "entry_index": int(entry_index),
        "entry_time": int(time[entry_index]),
        "entry_price": float(entry_price),
        "size": float(size),
        "entry_fee": float(entry_fee),
        "mark_price": mark,
        "unrealized_pnl": float(side * size * (mark - entry_price) - entry_fee),
        "stop_loss": level(sl),
        "take_profit": level(tp),
        "trailing_stop": level(trail),
    }


def run(bars_or_arrays, signals: Signals, config: EngineConfig | None = None) -> EngineResult:
    """Backtest ``signals`` on the bars with ``config`` (default EngineConfig()).

    ``bars_or_arrays`` is a :class:`Bars` or a mapping / DataFrame with ``open``, ``high``,
    ``low``, ``close`` (and optionally ``time`` as epoch ms, else bar indices are used as
    times). Signals must have one entry per bar. Short signals are ignored unless
    ``config.allow_short``. Deterministic: the same inputs always give identical results.
    Raises ValueError for mismatched lengths, zero bars or risk sizing without any stop.
    """
    config = config or EngineConfig()
    time, open_, high, low, close, timeframe = _prices(bars_or_arrays)
    if len(time) != len(close):
        raise ValueError("time must have one entry per bar")
    state, equity, buffer = simulate_arrays(open_, high, low, close, signals, config)
    n_trades, held, skipped = state[0], state[1], state[2]
    return EngineResult(
        trades=_trade_log(buffer, n_trades, time),
        open_position=_open_position(state, time, close),
        equity=equity,
        exposure=held / len(close),
        final_equity=float(equity[-1]),
        initial_cash=float(config.cash),
        time=time,
        timeframe=timeframe,
        skipped_entries=int(skipped),
        config=config,
    )


def trades_as_records(result: EngineResult) -> list[dict]:
    """Closed trades as JSON-able dicts with keys entry_time, exit_time (epoch ms ints),
    entry_price, exit_price, size, fees, pnl, return (floats), exit_reason ("signal",
    "stop_loss", "take_profit", "trailing_stop") and side ("long"/"short")."""
    return [
        {
            "entry_time": int(t["entry_time"]),
            "exit_time": int(t["exit_time"]),
            "entry_price": float(t["entry_price"]),
            "exit_price": float(t["exit_price"]),
            "size": float(t["size"]),
            "fees": float(t["fees"]),
            "pnl": float(t["pnl"]),
            "return": float(t["return"]),
            "exit_reason": core.EXIT_REASONS[int(t["exit_reason"])],
            "side": "long" if t["side"] > 0 else "short",
        }
        for t in result.trades
    ]
