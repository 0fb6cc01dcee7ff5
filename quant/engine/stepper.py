"""Step the engine one bar at a time: replay, paper and live callers.

The stepper runs the very compiled steps of the backtest loop (:mod:`quant.engine.core`):
``step`` = ``advance_bar`` (fill the pending order at the bar's open, protective exits
during the bar, mark to the close) then ``decide`` (read the bar's signal row at its close),
then the pre-trade ``hook`` on the intents ``decide`` produced. Stepping bars 0..n-1 with
the signal rows of a backtest gives the backtest's trades and equity exactly
(tests/quant/test_stepper.py checks it for every library strategy).

Units: prices in quote currency, amounts in base units, fees in quote currency (the
config's ``fee`` is a fraction of notional), bar indices count the bars stepped since the
state was made (``state.bar`` is the index the next ``step`` gets).

    state = new_state(EngineConfig(stop_loss=0.02))
    for i in range(len(bars)):
        result = step(state, bar_at(bars, i), signal_row(signals, i), hook=my_check)
        result.fills, result.trades, result.intents, result.equity

Edge cases
* A signal on the last bar of a backtest does nothing; a stepper never knows a bar is the
  last, so the pending order of the last step simply stays in ``state.pending``.
* ``hook(intent, state)`` returns the intent (approve), ``None`` (reject: counted in
  ``state.rejected_intents``; rejecting an exit also drops the reversal entry that came
  with it) or, for an entry, ``intent.resize(amount)`` (units; at the fill it is rounded
  down to ``amount_step``, capped by cash and checked against min amount / notional).
* ``step(..., simulate_fills=False)`` is for live trading: the exchange fills the pending
  order and holds the stops, the caller reports each fill with :func:`apply_external_fill`;
  the step then only moves the trailing reference, marks and decides.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

import numpy as np

from quant.strategies.base import Signals

from . import core
from .config import EngineConfig

__all__ = ["OrderIntent", "Fill", "StepResult", "EngineState", "new_state", "state_from_position",
           "step", "apply_external_fill", "signal_row", "bar_at", "Hook"]

_SIDE_NAMES = {1: "long", -1: "short"}
_SIDE_CODES = {"long": 1.0, "short": -1.0}
_DIRECTION_NAMES = {1: "buy", -1: "sell"}
_DIRECTION_CODES = {"buy": 1.0, "sell": -1.0}


def _level(x: float) -> float | None:
    return None if math.isnan(x) else float(x)


@dataclass(frozen=True)
class OrderIntent:
    """An order the engine wants sent, decided at the close of bar ``bar_index``.

    kind              "entry" or "exit" (market orders for the next open).
    side              the position side concerned: "long" or "short".
    direction         "buy" or "sell".
    reference_price   the signal bar's close (quote currency).
    stop_loss, take_profit   the entry's protective levels after tick rounding (None = none).
    amount            units fixed by a hook (None = sized at the fill by the config).
    estimated_amount  units the entry would get if it filled at the reference price ± slippage
                      (exits: the position size).
    """

    kind: str
    side: str
    direction: str
    bar_index: int
    reference_price: float
    stop_loss: float | None = None
    take_profit: float | None = None
    amount: float | None = None
    estimated_amount: float = 0.0

    def resize(self, amount: float) -> "OrderIntent":
        """This entry intent with a fixed ``amount`` (units > 0)."""
        if self.kind != "entry":
            raise ValueError("only an entry intent can be resized; reject an exit instead")
        if isinstance(amount, bool) or not isinstance(amount, (int, float)) or not math.isfinite(amount) \
                or amount <= 0:
            raise ValueError(f"amount: expected a positive number of units, got {amount!r}")
        return replace(self, amount=float(amount))


@dataclass(frozen=True)
class Fill:
    """One execution: ``amount`` units at ``price``, ``fee`` quote currency, during bar
    ``bar_index``; ``reason`` "signal" for entries and signal exits, else the exit reason."""

    bar_index: int
    direction: str
    amount: float
    price: float
    fee: float
    reason: str


@dataclass
class StepResult:
    """What one call changed: the fills and closed trades (dicts with the keys of
    :func:`quant.engine.trades_as_records` plus ``entry_index``/``exit_index``), the intents
    left after the hook, equity at the bar's close (None for an external fill)."""

    bar_index: int
    fills: list[Fill] = field(default_factory=list)
    trades: list[dict] = field(default_factory=list)
    intents: list[OrderIntent] = field(default_factory=list)
    rejected: list[OrderIntent] = field(default_factory=list)
    equity: float | None = None


Hook = Callable[[OrderIntent, "EngineState"], "OrderIntent | None"]


class EngineState:
    """The engine's explicit state for one market and one strategy, and its config.

    ``values`` is the float64 state array the compiled steps read and write (fields named by
    ``quant.engine.core.S_*``); the properties below read it in friendly units.
    """

    def __init__(self, config: EngineConfig, values: np.ndarray, bar: int = 0):
        self.config = config
        self.values = values
        self.cfg = config.as_array()
        self.outbox = core.new_outbox()
        self.bar = int(bar)
        self.last_close = math.nan  # close of the last bar stepped
        self._times: dict[int, int] = {}

    def _get(self, index: int) -> float:
        return float(self.values[index])

    @property
    def cash(self) -> float:
        """Quote currency excluding the open position's unrealised P&L (entry fee paid)."""
        return self._get(core.S_CASH)

    @property
    def side(self) -> str | None:
        """"long", "short" or None when flat."""
        return _SIDE_NAMES.get(int(self._get(core.S_SIDE)))

    @property
    def size(self) -> float:
        """Units held (0 when flat)."""
        return self._get(core.S_SIZE)

    @property
    def entry_price(self) -> float | None:
        """Average entry fill price (None when flat)."""
        return self._get(core.S_ENTRY_PRICE) if self.side else None

    @property
    def entry_fee(self) -> float:
        return self._get(core.S_ENTRY_FEE) if self.side else 0.0

    @property
    def stop_loss(self) -> float | None:
        return _level(self._get(core.S_STOP)) if self.side else None

    @property
    def take_profit(self) -> float | None:
        return _level(self._get(core.S_TARGET)) if self.side else None

    @property
    def trailing_stop(self) -> float | None:
        """The trailing stop level in force now (None when off or flat)."""
        trail = self.config.trailing_stop
        if not self.side or trail is None:
            return None
        side = self._get(core.S_SIDE)
        return float(core.round_level(self._get(core.S_EXTREME) * (1.0 - side * trail), side,
                                      float(self.config.price_step)))

    @property
    def equity(self) -> float:
        """Equity at the last close stepped (cash when nothing was stepped yet)."""
        return self._get(core.S_EQUITY)

    @property
    def fees_paid(self) -> float:
        return self._get(core.S_FEES_PAID)

    @property
    def trade_count(self) -> int:
        return int(self._get(core.S_N_TRADES))

    @property
    def skipped_entries(self) -> int:
        """Entries that got no size (budget, min amount, min notional, no usable stop)."""
        return int(self._get(core.S_SKIPPED))

    @property
    def rejected_intents(self) -> int:
        return int(self._get(core.S_REJECTED))

    @property
    def bars_held(self) -> int:
        return int(self._get(core.S_HELD))

    @property
    def pending(self) -> list[OrderIntent]:
        """The orders waiting for the next open (after the hook)."""
        return _pending_intents(self, self.bar - 1)

    def copy(self) -> "EngineState":
        other = EngineState(self.config, self.values.copy(), self.bar)
        other._times = dict(self._times)
        other.last_close = self.last_close
        return other

    def __repr__(self) -> str:
        return (f"EngineState(bar={self.bar}, cash={self.cash:.8g}, side={self.side}, size={self.size:.8g}, "
                f"equity={self.equity:.8g}, trades={self.trade_count})")


def new_state(config: EngineConfig | None = None, cash: float | None = None) -> EngineState:
    """A flat state with ``cash`` (default ``config.cash``) quote currency."""
    config = config or EngineConfig()
    cash = float(config.cash if cash is None else cash)
    if not math.isfinite(cash) or cash <= 0:
        raise ValueError(f"cash: must be a positive number, got {cash!r}")
    return EngineState(config, core.new_state(cash))


def state_from_position(config: EngineConfig, *, side: str, size: float, entry_price: float,
                        cash: float, entry_fee: float = 0.0, stop_loss: float | None = None,
                        take_profit: float | None = None, trailing_reference: float | None = None,
                        entry_index: int = -1) -> EngineState:
    """A state holding an open position, e.g. what an exchange account holds when a live
    engine starts.

    ``cash`` is the quote currency apart from the position (the entry fee already paid);
    equity = cash + side x size x (price - entry_price). ``stop_loss`` / ``take_profit``
    are absolute levels (rounded to the tick the engine's way); ``trailing_reference`` is the
    best price since entry (default ``entry_price``); ``entry_index`` the entry bar's index
    in the coming steps' numbering (-1 = before the first).
    """
    if side not in _SIDE_CODES:
        raise ValueError(f"side: expected 'long' or 'short', got {side!r}")
    if side == "short" and not config.allow_short:
        raise ValueError("side: a short position needs allow_short=True in the engine config")
    for name, value in (("size", size), ("entry_price", entry_price), ("cash", cash)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
            raise ValueError(f"{name}: must be a positive number, got {value!r}")
    if not (isinstance(entry_fee, (int, float)) and math.isfinite(entry_fee) and entry_fee >= 0):
        raise ValueError(f"entry_fee: must be a number >= 0, got {entry_fee!r}")
    code = _SIDE_CODES[side]
    values = core.new_state(float(cash))
    values[core.S_SIDE] = code
    values[core.S_SIZE] = float(size)
    values[core.S_ENTRY_PRICE] = float(entry_price)
    values[core.S_ENTRY_FEE] = float(entry_fee)
    values[core.S_ENTRY_INDEX] = float(entry_index)
    tick = float(config.price_step)
    for index, level in ((core.S_STOP, stop_loss), (core.S_TARGET, take_profit)):
        if level is not None:
            values[index] = core.round_level(float(level), code, tick)
    values[core.S_EXTREME] = float(entry_price if trailing_reference is None else trailing_reference)
    values[core.S_EQUITY] = float(cash)
    return EngineState(config, values)


# --------------------------------------------------------------------------- rows

_SIGNAL_KEYS = ("entries_long", "exits_long", "entries_short", "exits_short", "stop_price",
                "take_profit_price")


def signal_row(signals: Signals, i: int) -> dict:
    """Bar ``i`` of a :class:`Signals` as the mapping :func:`step` reads (absent arrays →
    False / NaN)."""
    row = {}
    for key in _SIGNAL_KEYS:
        values = getattr(signals, key)
        default = math.nan if key.endswith("price") else False
        row[key] = default if values is None else values[i].item()
    return row


def bar_at(bars, i: int) -> dict:
    """Bar ``i`` of a Bars object as a mapping with time, open, high, low, close."""
    return {"time": int(bars.time[i]), "open": float(bars.open[i]), "high": float(bars.high[i]),
            "low": float(bars.low[i]), "close": float(bars.close[i])}


def _bar_values(bar) -> tuple[int | None, float, float, float, float]:
    if isinstance(bar, Mapping):
        try:
            values = [float(bar[k]) for k in ("open", "high", "low", "close")]
        except KeyError as exc:
            raise ValueError(f"bar: missing {exc.args[0]!r}; need open, high, low and close") from None
        time = bar.get("time")
    else:
        try:
            values = [float(v) for v in bar[:4]]
        except (TypeError, ValueError):
            raise ValueError("bar: expected a mapping with open, high, low, close or a 4-tuple") from None
        time = bar[4] if len(bar) > 4 else None
    o, h, lo, c = values
    if not all(math.isfinite(v) and v > 0 for v in values):
        raise ValueError(f"bar: prices must be positive finite numbers, got {values}")
    if not (lo <= min(o, c) and h >= max(o, c)):
        raise ValueError(f"bar: low {lo} / high {h} do not bracket open {o} and close {c}")
    return (None if time is None else int(time)), o, h, lo, c


def _signal_values(row) -> tuple:
    row = row or {}
    unknown = set(row) - set(_SIGNAL_KEYS)
    if unknown:
        raise ValueError(f"signal row: unknown key(s) {', '.join(sorted(unknown))}; "
                         f"expected {', '.join(_SIGNAL_KEYS)}")
    flags = [bool(row.get(k, False)) for k in _SIGNAL_KEYS[:4]]
    levels = [row.get(k) for k in _SIGNAL_KEYS[4:]]
    levels = [math.nan if v is None else float(v) for v in levels]
    return (*flags, *levels)


# --------------------------------------------------------------------------- outbox

def _read_outbox(state: EngineState, fills_before: int, trades_before: int) -> tuple[list, list]:
    out = state.outbox[0]
    fills = []
    for k in range(fills_before, int(state.values[core.S_N_FILLS])):
        row = out["fills"][k % core.FILL_SLOTS]
        fills.append(Fill(int(row[core.FILL_BAR]), _DIRECTION_NAMES[int(row[core.FILL_DIRECTION])],
                          float(row[core.FILL_AMOUNT]), float(row[core.FILL_PRICE]),
                          float(row[core.FILL_FEE]), core.EXIT_REASONS[int(row[core.FILL_REASON])]))
    trades = []
    for k in range(trades_before, int(state.values[core.S_N_TRADES])):
        row = out["trades"][k % core.TRADE_SLOTS]
        entry_index, exit_index = int(row[core.COL_ENTRY_INDEX]), int(row[core.COL_EXIT_INDEX])
        trades.append({
            "entry_index": entry_index, "exit_index": exit_index,
            "entry_time": state._times.get(entry_index), "exit_time": state._times.get(exit_index),
            "entry_price": float(row[core.COL_ENTRY_PRICE]), "exit_price": float(row[core.COL_EXIT_PRICE]),
            "size": float(row[core.COL_SIZE]), "fees": float(row[core.COL_FEES]),
            "pnl": float(row[core.COL_PNL]), "return": float(row[core.COL_RETURN]),
            "exit_reason": core.EXIT_REASONS[int(row[core.COL_REASON])],
            "side": _SIDE_NAMES[int(row[core.COL_SIDE])],
        })
    return fills, trades


def _counts(state: EngineState) -> tuple[int, int]:
    return int(state.values[core.S_N_FILLS]), int(state.values[core.S_N_TRADES])


# --------------------------------------------------------------------------- intents

def _pending_intents(state: EngineState, bar_index: int) -> list[OrderIntent]:
    v = state.values
    intents = []
    side = int(v[core.S_SIDE])
    if v[core.S_PEND_EXIT] != 0 and side != 0:
        intents.append(OrderIntent("exit", _SIDE_NAMES[side], _DIRECTION_NAMES[-side], bar_index,
                                   state.last_close, estimated_amount=float(v[core.S_SIZE])))
    direction = int(v[core.S_PEND_ENTRY])
    if direction != 0:
        ref = float(v[core.S_PEND_REF])
        amount = None if math.isnan(v[core.S_PEND_AMOUNT]) else float(v[core.S_PEND_AMOUNT])
        estimate = core.estimate_entry_size(_flat_copy(state), state.cfg,
                                            float(core.market_fill_price(direction, ref, state.config.slippage)))
        intents.append(OrderIntent("entry", _SIDE_NAMES[direction], _DIRECTION_NAMES[direction], bar_index,
                                   ref, _level(v[core.S_PEND_STOP]), _level(v[core.S_PEND_TARGET]),
                                   amount, float(estimate)))
    return intents


def _flat_copy(state: EngineState) -> np.ndarray:
    """The state as the entry will see it: after the pending exit (if any) at the reference
    price, i.e. with the position's value released to cash (for the size estimate only)."""
    v = state.values.copy()
    if v[core.S_SIDE] != 0 and v[core.S_PEND_EXIT] != 0:
        v[core.S_CASH] = v[core.S_EQUITY]
        v[core.S_SIDE] = 0.0
    return v


def _run_hook(state: EngineState, hook: Hook | None, intents: list[OrderIntent]
              ) -> tuple[list[OrderIntent], list[OrderIntent]]:
    if hook is None or not intents:
        return intents, []
    v = state.values
    kept, rejected = [], []
    exit_rejected = False
    for intent in intents:
        if intent.kind == "entry" and exit_rejected and v[core.S_SIDE] != 0:
            rejected.append(intent)  # a reversal without its exit cannot happen
            v[core.S_PEND_ENTRY] = 0.0
            v[core.S_REJECTED] += 1
            continue
        answer = hook(intent, state)
        if answer is None:
            rejected.append(intent)
            v[core.S_REJECTED] += 1
            if intent.kind == "exit":
                v[core.S_PEND_EXIT] = 0.0
                exit_rejected = True
            else:
                v[core.S_PEND_ENTRY] = 0.0
            continue
        if not isinstance(answer, OrderIntent) or (answer.kind, answer.side, answer.direction) != \
                (intent.kind, intent.side, intent.direction):
            raise ValueError(f"hook must return the intent, intent.resize(amount) or None; got {answer!r}")
        if intent.kind == "entry" and answer.amount is not None:
            v[core.S_PEND_AMOUNT] = float(answer.amount)
        kept.append(answer)
    return kept, rejected


# --------------------------------------------------------------------------- steps

def step(state: EngineState, bar, signals=None, *, hook: Hook | None = None,
         simulate_fills: bool = True) -> StepResult:
    """Advance ``state`` by one bar and return what happened.

    ``bar``: mapping with open, high, low, close (optional time, epoch ms) or a tuple
    ``(open, high, low, close[, time])``. ``signals``: the bar's signal row, a mapping with
    any of entries_long, exits_long, entries_short, exits_short (bools) and stop_price,
    take_profit_price (absolute levels, NaN/None = none) — see :func:`signal_row`; None =
    no signal. Order: the pending order fills at this open (unless ``simulate_fills`` is
    False), stops/targets are checked during the bar, equity is marked at the close, the
    signal row is read at the close, and ``hook`` sees each new intent. Raises ValueError
    for a malformed bar or signal row, or a hook answer that is not an intent or None.
    """
    time, o, h, lo, c = _bar_values(bar)
    flags = _signal_values(signals)
    index = state.bar
    if time is not None:
        state._times[index] = time
    fills_before, trades_before = _counts(state)
    if simulate_fills:
        equity = core.step_bar(state.values, state.cfg, state.outbox, float(index), o, h, lo, c)
    else:
        state.values[core.S_PEND_EXIT] = 0.0
        state.values[core.S_PEND_ENTRY] = 0.0
        equity = core.track_bar(state.values, h, lo, c)
    fills, trades = _read_outbox(state, fills_before, trades_before)
    core.decide_bar(state.values, state.cfg, c, *flags)
    state.last_close = c
    state.bar = index + 1
    intents = [i for i in _pending_intents(state, index)]
    kept, rejected = _run_hook(state, hook, intents)
    return StepResult(index, fills, trades, kept, rejected, float(equity))


def apply_external_fill(state: EngineState, side: str, amount: float, price: float, fee: float, *,
                        bar_index: int | None = None) -> StepResult:
    """Book a fill an exchange reported: ``side`` "buy" or "sell", ``amount`` units > 0 at
    ``price`` > 0, ``fee`` >= 0 paid in quote currency.

    The fill opens, adds to, reduces, closes or reverses the position (see
    ``core.apply_fill``). A fill in the direction of the pending entry consumes it (the
    position gets its stop/target/trailing reference); one that closes against a pending
    exit consumes that (exit reason "signal"); any other closing fill is reason "external".
    ``bar_index`` defaults to ``state.bar`` (the bar in progress). Partial closes are trades
    of the closed units with the entry fee pro-rated.
    """
    if side not in _DIRECTION_CODES:
        raise ValueError(f"side: expected 'buy' or 'sell', got {side!r}")
    for name, value, low_ok in (("amount", amount, False), ("price", price, False), ("fee", fee, True)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                or value < 0 or (value == 0 and not low_ok):
            bound = ">= 0" if low_ok else "> 0"
            raise ValueError(f"{name}: expected a finite number {bound}, got {value!r}")
    direction = _DIRECTION_CODES[side]
    v = state.values
    position = v[core.S_SIDE]
    if position == 0 and direction < 0 and not state.config.allow_short:
        raise ValueError("a sell while flat would open a short; set allow_short=True to allow it")
    reason = core.EXTERNAL
    if position != 0 and direction != position and v[core.S_PEND_EXIT] != 0:
        v[core.S_PEND_EXIT] = 0.0
        reason = core.SIGNAL
    opens = position == 0 or (direction != position and amount > v[core.S_SIZE])
    if opens and v[core.S_PEND_ENTRY] == direction:
        v[core.S_PEND_ENTRY] = 0.0
    elif opens:
        v[core.S_PEND_STOP] = v[core.S_PEND_TARGET] = v[core.S_PEND_REF] = math.nan
    index = state.bar if bar_index is None else int(bar_index)
    fills_before, trades_before = _counts(state)
    core.book_fill(v, state.outbox, float(index), direction, float(amount), float(price), float(fee),
                   reason)
    fills, trades = _read_outbox(state, fills_before, trades_before)
    return StepResult(index, fills, trades)
