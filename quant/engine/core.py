"""The engine's rules as small compiled steps over an explicit state, and the backtest loop.

This module is the single implementation of the trading rules (see the package docstring
and README.md). The engine's whole memory between bars is its STATE: STATE_SIZE float64
values named by the ``S_*`` constants (cash, position, entry, protective levels, trailing
extreme, pending order, counters). Compiled code carries it as a tuple, which LLVM keeps in
registers (``_set`` returns a copy with one field replaced); Python keeps it in a float64
array. Settings are a CONFIG tuple/array named by ``C_*``. The steps:

* :func:`decide` — state + one bar's close + that bar's signal row → the pending order
  (exit and/or entry intent, with the entry's protective levels rounded to the tick);
* :func:`market_fill_price` / :func:`protective_exit` — where an order would fill (next
  open ± slippage; stop before target; a gap through a level fills at the open);
* :func:`apply_fill` — the books (open, add, reduce, close or reverse; cash, fees), writing
  the fill and any closed trade to an OUTBOX record the caller empties;
* :func:`advance_bar` — fills the pending order at a bar's open, checks the protective
  levels during the bar and marks to its close (the three above, in the engine's order).

:func:`backtest` is the loop over ``advance_bar`` + ``decide``; the Python stepping API
(:mod:`quant.engine.stepper`) calls these very functions one bar at a time (through
:func:`step_bar`, :func:`decide_bar`, :func:`book_fill`) and runs a pre-trade hook between
``decide`` and the next ``advance_bar``; in the compiled loop that hook is the identity (no
code). Run with ``NUMBA_DISABLE_JIT=1`` the same code executes as plain Python, which is
what the benchmark compares against.
"""

from __future__ import annotations

import math

import numpy as np
from numba.core import config as _numba_config

from quant._jit import jit

if _numba_config.DISABLE_JIT:
    def _set(state, index, value):
        """``state`` with field ``index`` replaced by ``value`` (plain-Python twin)."""
        return state[:index] + (value,) + state[index + 1:]
else:
    from numba.cpython.unsafe.tuple import tuple_setitem as _set

# Exit reasons stored in the trade log (small ints; names in EXIT_REASONS). EXTERNAL marks a
# fill an exchange reported (stepper.apply_external_fill); backtests never produce it.
SIGNAL, STOP_LOSS, TAKE_PROFIT, TRAILING_STOP, EXTERNAL = 0, 1, 2, 3, 4
EXIT_REASONS = {SIGNAL: "signal", STOP_LOSS: "stop_loss", TAKE_PROFIT: "take_profit",
                TRAILING_STOP: "trailing_stop", EXTERNAL: "external"}

# Sizing modes (EngineConfig.sizing).
FRACTION, NOTIONAL, RISK = 0, 1, 2
SIZING_CODES = {"fraction": FRACTION, "notional": NOTIONAL, "risk": RISK}

# Columns of the float64 trade buffer.
(COL_ENTRY_INDEX, COL_EXIT_INDEX, COL_SIDE, COL_ENTRY_PRICE, COL_EXIT_PRICE, COL_SIZE,
 COL_FEES, COL_PNL, COL_RETURN, COL_REASON) = range(10)
TRADE_COLUMNS = 10

# Columns of a fill row: bar index, +1 buy / -1 sell, units, price, fee paid (quote
# currency), reason code (SIGNAL for entries and signal exits).
FILL_BAR, FILL_DIRECTION, FILL_AMOUNT, FILL_PRICE, FILL_FEE, FILL_REASON = range(6)
FILL_COLUMNS = 6

# The state. Prices in quote currency, sizes in base units, indices are bar indices.
(S_CASH,         # equity without the open position's unrealised P&L (entry fees paid)
 S_SIDE,         # +1 long, -1 short, 0 flat
 S_SIZE,         # units held (> 0 when not flat)
 S_ENTRY_PRICE,  # average fill price of the position (slippage included)
 S_ENTRY_FEE,    # entry fees paid on the units still held
 S_ENTRY_INDEX,  # bar index of the entry fill (-1 = before the first bar stepped)
 S_STOP,         # fixed stop level (NaN = none)
 S_TARGET,       # take-profit level (NaN = none)
 S_EXTREME,      # highest high (long) / lowest low (short) since the entry order was sent
 S_PEND_EXIT,    # 1 = a market exit is pending for the next open
 S_PEND_ENTRY,   # +1 / -1 = a market entry of that direction is pending, 0 = none
 S_PEND_STOP,    # stop level of the pending entry (NaN = none)
 S_PEND_TARGET,  # take-profit level of the pending entry (NaN = none)
 S_PEND_REF,     # reference price of the pending entry: its signal close
 S_PEND_AMOUNT,  # units fixed by a pre-trade hook; NaN = size at the fill by the config
 S_N_TRADES,     # closed trades so far
 S_HELD,         # bars during which a position was held at some point
 S_SKIPPED,      # entries that got no size (budget, min amount / notional, no usable stop)
 S_REJECTED,     # intents a pre-trade hook rejected
 S_FEES_PAID,    # all fees paid so far, quote currency
 S_N_FILLS,      # fills so far
 S_EQUITY,       # equity at the last mark
 ) = range(22)
STATE_SIZE = 22
STATE_FIELDS = ("cash", "side", "size", "entry_price", "entry_fee", "entry_index", "stop",
                "target", "extreme", "pend_exit", "pend_entry", "pend_stop", "pend_target",
                "pend_ref", "pend_amount", "n_trades", "held", "skipped", "rejected",
                "fees_paid", "n_fills", "equity")

# Settings (EngineConfig.as_array()); protective fractions NaN = off, allow_short 0/1.
(C_FEE, C_SLIPPAGE, C_SIZING, C_SIZE_VALUE, C_AMOUNT_STEP, C_MIN_AMOUNT, C_STOP_LOSS,
 C_TAKE_PROFIT, C_TRAILING, C_ALLOW_SHORT, C_PRICE_STEP, C_MIN_NOTIONAL) = range(12)
CONFIG_SIZE = 12

# Where apply_fill writes: trade k in trades[k % TRADE_SLOTS], fill k in fills[k % FILL_SLOTS].
# A record (not an array) so compiled steps take it by pointer, without reference counting.
TRADE_SLOTS = 2  # trades one advance_bar can close: a signal exit at the open + a stop in the bar
FILL_SLOTS = 4   # fills one advance_bar can make: exit + entry at the open + a protective exit
OUTBOX_DTYPE = np.dtype([("trades", np.float64, (TRADE_SLOTS, TRADE_COLUMNS)),
                         ("fills", np.float64, (FILL_SLOTS, FILL_COLUMNS))])


def new_state(cash: float) -> np.ndarray:
    """A flat state holding ``cash`` quote currency (float64 array of STATE_SIZE)."""
    state = np.zeros(STATE_SIZE)
    state[[S_STOP, S_TARGET, S_EXTREME, S_PEND_STOP, S_PEND_TARGET, S_PEND_REF, S_PEND_AMOUNT]] = np.nan
    state[S_CASH] = state[S_EQUITY] = cash
    state[S_ENTRY_INDEX] = -1.0
    return state


def new_outbox() -> np.ndarray:
    """A one-element OUTBOX_DTYPE array; compiled steps take ``outbox[0]``."""
    return np.zeros(1, dtype=OUTBOX_DTYPE)


@jit(nogil=True)
def load_state(a):
    """The state tuple of a float64 state array."""
    return (a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9], a[10], a[11], a[12],
            a[13], a[14], a[15], a[16], a[17], a[18], a[19], a[20], a[21])


@jit(nogil=True)
def store_state(state, a):
    """Write a state tuple into a float64 state array."""
    for k in range(STATE_SIZE):
        a[k] = state[k]


@jit(nogil=True)
def load_config(a):
    """The config tuple of a float64 config array."""
    return (a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9], a[10], a[11])


@jit(nogil=True, inline="always")
def round_level(level, position_side, price_step):
    """Round a protective level of a ``position_side`` position to the tick ``price_step``.

    A long's levels (stop, trailing stop, take-profit) are SELL orders and round DOWN to the
    tick; a short's are BUY orders and round UP. So a stop is never tighter than asked (it
    does not trigger on a price the strategy placed it beyond) and a target is never further
    than asked (it is reached whenever the exact level would be). ``price_step <= 0`` or a
    NaN level: returned unchanged. A level already on the tick (within 1e-9 tick) is kept.
    """
    if not price_step > 0.0 or math.isnan(level):
        return level
    ticks = level / price_step
    if position_side > 0:
        return math.floor(ticks + 1e-9) * price_step
    return math.ceil(ticks - 1e-9) * price_step


@jit(nogil=True)
def order_size(direction, price, cash, fee, slippage, sizing, size_value, amount_step,
               min_amount, stop_level, requested, min_notional):
    """Units to buy (direction +1) or sell short (-1) at fill ``price`` with ``cash`` equity.

    The budget is what may be spent on notional plus the entry fee: ``size_value * cash``
    (fraction), ``min(size_value, cash)`` (notional) or ``cash`` (risk, where the size is
    ``size_value * cash`` divided by the loss per unit at ``stop_level`` including fees and
    slippage). ``requested`` (units, from a pre-trade hook; NaN = none) replaces the sizing
    rule, capped by ``cash``. The size is rounded DOWN to ``amount_step`` and then stepped
    down until ``size * price + size * price * fee <= budget`` holds in floating point.
    Returns 0.0 when the entry must be skipped (no budget, no valid stop for risk sizing,
    below ``min_amount``, notional ``size * price`` below ``min_notional``).
    """
    if cash <= 0.0:
        return 0.0
    unit_cost = price * (1.0 + fee)
    if not math.isnan(requested):
        budget = cash
        size = min(requested, budget / unit_cost)
    elif sizing == FRACTION:
        budget = cash * size_value
        size = budget / unit_cost
    elif sizing == NOTIONAL:
        budget = min(size_value, cash)
        size = budget / unit_cost
    else:
        if math.isnan(stop_level):
            return 0.0
        if direction > 0:
            stop_fill = stop_level * (1.0 - slippage)
            loss_per_unit = price - stop_fill
        else:
            stop_fill = stop_level * (1.0 + slippage)
            loss_per_unit = stop_fill - price
        if not loss_per_unit > 0.0:
            return 0.0
        loss_per_unit += fee * (price + stop_fill)
        budget = cash
        size = min(cash * size_value / loss_per_unit, budget / unit_cost)
    if amount_step > 0.0:
        # The epsilon keeps an exact fit (1001 / 10.01 = 99.999...) at 100 steps; the loop
        # below removes any step that does not actually fit.
        size = math.floor(size / amount_step + 1e-9) * amount_step
    # Rounding can leave cost + fee a hair above the budget; step down until it fits.
    while size > 0.0 and size * price + size * price * fee > budget:
        size = size - amount_step if amount_step > 0.0 else np.nextafter(size, 0.0)
    if size <= 0.0 or size < min_amount or size * price < min_notional:
        return 0.0
    return size


@jit(nogil=True, inline="always")
def market_fill_price(direction, bar_open, slippage):
    """Fill of a market order sent at a close: the next ``bar_open`` worsened by slippage
    (a buy, ``direction`` +1, pays ``open * (1 + slippage)``; a sell gets ``open * (1 - slippage)``)."""
    if direction > 0:
        return bar_open * (1.0 + slippage)
    return bar_open * (1.0 - slippage)


@jit(nogil=True, inline="always")
def protective_level(state, cfg):
    """``(level, reason)`` of the stop in force for the open position: the fixed stop, or
    the trailing stop (extreme x (1 -/+ trail), rounded to the tick) when it is tighter."""
    side = state[S_SIDE]
    level = state[S_STOP]
    reason = STOP_LOSS
    trailing = cfg[C_TRAILING]
    if not math.isnan(trailing):
        trail = round_level(state[S_EXTREME] * (1.0 - side * trailing), side, cfg[C_PRICE_STEP])
        if math.isnan(level) or side * (trail - level) > 0.0:
            level = trail
            reason = TRAILING_STOP
    return level, reason


@jit(nogil=True, inline="always")
def protective_exit(state, cfg, bar_open, high, low):
    """Where the open position's stop or target fills in a bar, without changing the state.

    Returns ``(fill_price, reason)``, fill NaN when neither was touched. The stop is
    checked first: when one bar touches both, the stop wins. A level fills at the level, or
    at the open when the bar opened beyond it (gap), then worsened by slippage.
    """
    side = state[S_SIDE]
    level, reason = protective_level(state, cfg)
    target = state[S_TARGET]
    fill = np.nan
    if side > 0:
        sell = 1.0 - cfg[C_SLIPPAGE]
        if low <= level:
            fill = min(bar_open, level) * sell  # gapped through: the open
        elif high >= target:
            fill = max(bar_open, target) * sell
            reason = TAKE_PROFIT
    elif side < 0:
        buy = 1.0 + cfg[C_SLIPPAGE]
        if high >= level:
            fill = max(bar_open, level) * buy
        elif low <= target:
            fill = min(bar_open, target) * buy
            reason = TAKE_PROFIT
    return fill, reason


@jit(nogil=True)
def _write_trade(out, k, entry_index, exit_index, side, entry_price, exit_price, size, entry_fee,
                 exit_fee, pnl, reason):
    row = out["trades"][k % TRADE_SLOTS]
    row[COL_ENTRY_INDEX] = entry_index
    row[COL_EXIT_INDEX] = exit_index
    row[COL_SIDE] = side
    row[COL_ENTRY_PRICE] = entry_price
    row[COL_EXIT_PRICE] = exit_price
    row[COL_SIZE] = size
    row[COL_FEES] = entry_fee + exit_fee
    row[COL_PNL] = pnl
    row[COL_RETURN] = pnl / (size * entry_price + entry_fee)
    row[COL_REASON] = reason


@jit(nogil=True)
def _write_fill(out, k, bar, direction, amount, price, fee_paid, reason):
    row = out["fills"][k % FILL_SLOTS]
    row[FILL_BAR] = bar
    row[FILL_DIRECTION] = direction
    row[FILL_AMOUNT] = amount
    row[FILL_PRICE] = price
    row[FILL_FEE] = fee_paid
    row[FILL_REASON] = reason


@jit(nogil=True)
def apply_fill(state, out, bar, direction, amount, price, fee_paid, reason):
    """Book one fill and return the new state: ``amount`` units bought (``direction`` +1)
    or sold (-1) at ``price``, paying ``fee_paid`` quote currency, at bar index ``bar``.

    Flat → opens a position whose protective levels and trailing reference come from the
    pending entry (reference NaN → the fill price). Same side → adds (average entry price,
    fees accumulate, levels kept). Opposite side → closes ``min(amount, size)`` units as one
    trade with exit reason ``reason`` (the entry fee, and this fee when the fill also opens
    the other side, are pro-rated by units) and opens any remainder on the other side.
    The fill and any closed trade are written to the outbox record ``out``.
    """
    _write_fill(out, int(state[S_N_FILLS]), bar, direction, amount, price, fee_paid, reason)
    state = _set(state, S_N_FILLS, state[S_N_FILLS] + 1.0)
    state = _set(state, S_FEES_PAID, state[S_FEES_PAID] + fee_paid)
    side = state[S_SIDE]
    if side != 0.0 and direction != side:
        size = state[S_SIZE]
        if amount >= size:
            closed = size
            entry_fee = state[S_ENTRY_FEE]
            exit_fee = fee_paid if amount == size else fee_paid * (size / amount)
        else:
            closed = amount
            entry_fee = state[S_ENTRY_FEE] * (amount / size)
            exit_fee = fee_paid
        entry_price = state[S_ENTRY_PRICE]
        gross = side * closed * (price - entry_price)
        pnl = gross - entry_fee - exit_fee
        _write_trade(out, int(state[S_N_TRADES]), state[S_ENTRY_INDEX], bar, side, entry_price,
                     price, closed, entry_fee, exit_fee, pnl, reason)
        state = _set(state, S_N_TRADES, state[S_N_TRADES] + 1.0)
        state = _set(state, S_CASH, state[S_CASH] + (gross - exit_fee))
        if amount < size:
            state = _set(state, S_SIZE, size - amount)
            return _set(state, S_ENTRY_FEE, state[S_ENTRY_FEE] - entry_fee)
        state = _set(state, S_SIDE, 0.0)
        state = _set(state, S_SIZE, 0.0)
        state = _set(state, S_ENTRY_FEE, 0.0)
        amount = amount - size
        fee_paid = fee_paid - exit_fee
        if not amount > 0.0:
            return state
    if state[S_SIDE] == 0.0:
        state = _set(state, S_SIDE, direction)
        state = _set(state, S_SIZE, amount)
        state = _set(state, S_ENTRY_PRICE, price)
        state = _set(state, S_ENTRY_FEE, fee_paid)
        state = _set(state, S_CASH, state[S_CASH] - fee_paid)
        state = _set(state, S_ENTRY_INDEX, bar)
        state = _set(state, S_STOP, state[S_PEND_STOP])
        state = _set(state, S_TARGET, state[S_PEND_TARGET])
        ref = state[S_PEND_REF]
        return _set(state, S_EXTREME, price if math.isnan(ref) else ref)
    size = state[S_SIZE]
    total = size + amount
    state = _set(state, S_ENTRY_PRICE, (size * state[S_ENTRY_PRICE] + amount * price) / total)
    state = _set(state, S_SIZE, total)
    state = _set(state, S_ENTRY_FEE, state[S_ENTRY_FEE] + fee_paid)
    return _set(state, S_CASH, state[S_CASH] - fee_paid)


@jit(nogil=True, inline="always")
def entry_size(state, cfg, direction, fill):
    """Units the pending entry of ``direction`` gets at ``fill`` (0 = skipped): the hook's
    amount or the config's sizing, with the pending stop or, when tighter, the trailing stop
    from the signal close as the risk level (:func:`order_size`)."""
    risk_level = state[S_PEND_STOP]
    trailing = cfg[C_TRAILING]
    if not math.isnan(trailing):
        trail = round_level(state[S_PEND_REF] * (1.0 - direction * trailing), direction,
                            cfg[C_PRICE_STEP])
        if math.isnan(risk_level) or direction * (trail - risk_level) > 0.0:
            risk_level = trail  # the tighter of the two stops bounds the loss
    return order_size(direction, fill, state[S_CASH], cfg[C_FEE], cfg[C_SLIPPAGE],
                      int(cfg[C_SIZING]), cfg[C_SIZE_VALUE], cfg[C_AMOUNT_STEP], cfg[C_MIN_AMOUNT],
                      risk_level, state[S_PEND_AMOUNT], cfg[C_MIN_NOTIONAL])


@jit(nogil=True)
def fill_pending(state, cfg, out, bar, bar_open):
    """The pending order (sent at the previous close) fills at ``bar_open``: exit first,
    then the entry, sized at its fill price (or the hook's amount); an entry that gets no
    size is skipped and counted. Returns the new state."""
    fee = cfg[C_FEE]
    slippage = cfg[C_SLIPPAGE]
    if state[S_PEND_EXIT] != 0.0:
        state = _set(state, S_PEND_EXIT, 0.0)
        side = state[S_SIDE]
        if side != 0.0:
            size = state[S_SIZE]
            fill = market_fill_price(-side, bar_open, slippage)
            state = apply_fill(state, out, bar, -side, size, fill, size * fill * fee, SIGNAL)
    direction = state[S_PEND_ENTRY]
    if direction != 0.0:
        state = _set(state, S_PEND_ENTRY, 0.0)
        fill = market_fill_price(direction, bar_open, slippage)
        units = 0.0
        if state[S_SIDE] == 0.0:
            units = entry_size(state, cfg, direction, fill)
        if units > 0.0:
            state = apply_fill(state, out, bar, direction, units, fill, units * fill * fee, SIGNAL)
        else:
            state = _set(state, S_SKIPPED, state[S_SKIPPED] + 1.0)
    return state


@jit(nogil=True, inline="always")
def advance_bar(state, cfg, out, bar, bar_open, high, low, close):
    """Everything that happens to the books during bar ``bar``: returns the new state
    (``state[S_EQUITY]`` = equity at ``close``).

    1. :func:`fill_pending` at this open. 2. The protective levels are live from the entry
    bar on, stop before target (:func:`protective_exit`); the trailing extreme moves only on
    bars that did not exit. 3. The position is marked to ``close``. Fills and trades go to
    the outbox ``out``.
    """
    if state[S_PEND_EXIT] != 0.0 or state[S_PEND_ENTRY] != 0.0:
        state = fill_pending(state, cfg, out, bar, bar_open)
    side = state[S_SIDE]
    if side != 0.0:
        state = _set(state, S_HELD, state[S_HELD] + 1.0)
        exit_fill, reason = protective_exit(state, cfg, bar_open, high, low)
        if not math.isnan(exit_fill):
            size = state[S_SIZE]
            state = apply_fill(state, out, bar, -side, size, exit_fill, size * exit_fill * cfg[C_FEE],
                               reason)
        else:
            state = move_extreme(state, high, low)
    return mark(state, close)


@jit(nogil=True, inline="always")
def move_extreme(state, high, low):
    """The trailing reference after a bar the position survived: the highest high (long)
    or lowest low (short) so far."""
    if state[S_SIDE] > 0.0:
        return _set(state, S_EXTREME, max(state[S_EXTREME], high))
    if state[S_SIDE] < 0.0:
        return _set(state, S_EXTREME, min(state[S_EXTREME], low))
    return state


@jit(nogil=True, inline="always")
def mark(state, close):
    """The state with ``S_EQUITY`` = cash + the position marked to ``close``."""
    side = state[S_SIDE]
    if side != 0.0:
        return _set(state, S_EQUITY, state[S_CASH] + side * state[S_SIZE] * (close - state[S_ENTRY_PRICE]))
    return _set(state, S_EQUITY, state[S_CASH])


@jit(nogil=True, inline="always")
def decide(state, cfg, close, entry_long, exit_long, entry_short, exit_short, stop_price,
           target_price):
    """Read one bar's signal row at its ``close``; return the state with the pending order
    for the next open.

    Exits are processed before entries: an exit of the held side is pending; an entry is
    pending when flat or exiting, and ignored when it comes with an exit of the same side or
    with an entry of the other side, and for shorts unless ``allow_short``. The entry's stop
    and target are ``stop_price`` / ``target_price`` when not NaN, else the configured
    fractions of ``close``, rounded to the tick (:func:`round_level`); ``close`` is also the
    trailing stop's starting reference. A new entry clears any amount a hook set before.
    """
    side = state[S_SIDE]
    exiting = False
    if side > 0.0 and exit_long:
        exiting = True
    elif side < 0.0 and exit_short:
        exiting = True
    if exiting:
        state = _set(state, S_PEND_EXIT, 1.0)
    if side == 0.0 or exiting:
        go_long = entry_long and not exit_long and side <= 0.0
        go_short = cfg[C_ALLOW_SHORT] != 0.0 and entry_short and not exit_short and side >= 0.0
        direction = 0.0
        if go_long and not go_short:
            direction = 1.0
        elif go_short and not go_long:
            direction = -1.0
        if direction != 0.0:
            tick = cfg[C_PRICE_STEP]
            stop = np.nan
            if not math.isnan(stop_price):
                stop = stop_price
            elif not math.isnan(cfg[C_STOP_LOSS]):
                stop = close * (1.0 - direction * cfg[C_STOP_LOSS])
            target = np.nan
            if not math.isnan(target_price):
                target = target_price
            elif not math.isnan(cfg[C_TAKE_PROFIT]):
                target = close * (1.0 + direction * cfg[C_TAKE_PROFIT])
            state = _set(state, S_PEND_ENTRY, direction)
            state = _set(state, S_PEND_REF, close)
            state = _set(state, S_PEND_AMOUNT, np.nan)
            state = _set(state, S_PEND_STOP, round_level(stop, direction, tick))
            state = _set(state, S_PEND_TARGET, round_level(target, direction, tick))
    return state


@jit(nogil=True)
def _copy_trades(out, first, count, trades, offset):
    """Copy closed trades ``first .. count-1`` from the outbox to ``trades`` rows ``k - offset``."""
    for k in range(first, count):
        row = k - offset
        if 0 <= row < trades.shape[0]:
            trades[row, :] = out["trades"][k % TRADE_SLOTS]


@jit(nogil=True)
def backtest(open_, high, low, close, entries_long, exits_long, entries_short, exits_short,
             stop_price, take_profit_price, cfg_array, state_array, equity, trades):
    """The backtest: for each bar, :func:`advance_bar` then (except on the last bar, which
    has no next open) :func:`decide`. Fills ``equity[n]`` and ``trades`` (row k = the k-th
    trade closed in this call) and updates ``state_array``.

    Signal arrays as in :func:`simulate`; empty short arrays mean "no short signals", empty
    level arrays "no strategy levels". Trade indices are bar indices of these arrays.
    """
    n = close.shape[0]
    # An absent array becomes one neutral element read at index i * 0: no branch per bar.
    short_step = 1 if entries_short.shape[0] == n and exits_short.shape[0] == n else 0
    if short_step == 0:
        entries_short = np.zeros(1, dtype=np.bool_)
        exits_short = entries_short
    stop_step = 1 if stop_price.shape[0] == n else 0
    if stop_step == 0:
        stop_price = np.full(1, np.nan)
    target_step = 1 if take_profit_price.shape[0] == n else 0
    if target_step == 0:
        take_profit_price = np.full(1, np.nan)
    boxes = np.zeros(1, dtype=OUTBOX_DTYPE)
    out = boxes[0]
    cfg = load_config(cfg_array)
    state = load_state(state_array)
    first = int(state[S_N_TRADES])
    shorts = cfg[C_ALLOW_SHORT] != 0.0
    i = 0
    while i < n:
        if state[S_SIDE] == 0.0 and state[S_PEND_EXIT] == 0.0 and state[S_PEND_ENTRY] == 0.0:
            # Flat with nothing pending: until an entry signal, a bar only marks equity at the
            # cash (what advance_bar and decide would do, without stepping the state).
            cash = state[S_CASH]
            j = i
            while j < n - 1 and not entries_long[j] and not (shorts and entries_short[j * short_step]):
                equity[j] = cash
                j += 1
            if j > i:
                state = _set(state, S_EQUITY, cash)
                i = j
        before = state[S_N_TRADES]
        state = advance_bar(state, cfg, out, i, open_[i], high[i], low[i], close[i])
        equity[i] = state[S_EQUITY]
        if state[S_N_TRADES] != before:
            _copy_trades(out, int(before), int(state[S_N_TRADES]), trades, first)
        if i < n - 1:
            state = decide(state, cfg, close[i], entries_long[i], exits_long[i],
                           entries_short[i * short_step], exits_short[i * short_step],
                           stop_price[i * stop_step], take_profit_price[i * target_step])
        i += 1
    store_state(state, state_array)


@jit(nogil=True)
def step_bar(state_array, cfg_array, outbox, bar, bar_open, high, low, close):
    """:func:`advance_bar` on a state ARRAY (updated in place) for Python callers; fills
    and trades land in ``outbox[0]``. Returns equity at ``close``."""
    state = advance_bar(load_state(state_array), load_config(cfg_array), outbox[0], bar,
                        bar_open, high, low, close)
    store_state(state, state_array)
    return state[S_EQUITY]


@jit(nogil=True)
def decide_bar(state_array, cfg_array, close, entry_long, exit_long, entry_short, exit_short,
               stop_price, target_price):
    """:func:`decide` on a state ARRAY (updated in place) for Python callers."""
    state = decide(load_state(state_array), load_config(cfg_array), close, entry_long, exit_long,
                   entry_short, exit_short, stop_price, target_price)
    store_state(state, state_array)


@jit(nogil=True)
def book_fill(state_array, outbox, bar, direction, amount, price, fee_paid, reason):
    """:func:`apply_fill` on a state ARRAY (updated in place) for Python callers."""
    state = apply_fill(load_state(state_array), outbox[0], bar, direction, amount, price,
                       fee_paid, reason)
    store_state(state, state_array)


@jit(nogil=True)
def track_bar(state_array, high, low, close):
    """For callers whose fills come from an exchange: count the bar as held, move the
    trailing reference (the exchange holds the stops) and mark to ``close``; no fills."""
    state = load_state(state_array)
    if state[S_SIDE] != 0.0:
        state = _set(state, S_HELD, state[S_HELD] + 1.0)
    state = mark(move_extreme(state, high, low), close)
    store_state(state, state_array)
    return state[S_EQUITY]


@jit(nogil=True)
def estimate_entry_size(state_array, cfg_array, fill):
    """Units the pending entry would get if it filled at ``fill`` now (0 = skipped)."""
    state = load_state(state_array)
    return entry_size(state, load_config(cfg_array), state[S_PEND_ENTRY], fill)


def make_config(fee, slippage, sizing, size_value, amount_step, min_amount, stop_loss,
                take_profit, trailing_stop, allow_short, price_step=0.0, min_notional=0.0
                ) -> np.ndarray:
    """The float64 config array (``sizing`` an int code, protective fractions NaN when off)."""
    return np.array([fee, slippage, sizing, size_value, amount_step, min_amount, stop_loss,
                     take_profit, trailing_stop, 1.0 if allow_short else 0.0, price_step,
                     min_notional], dtype=np.float64)


def summary(state: np.ndarray, cfg: np.ndarray) -> tuple:
    """``(n_trades, bars_held, skipped_entries, side, entry_index, entry_price, size,
    entry_fee, stop_level, take_profit_level, trailing_level)`` of a state array."""
    side = int(state[S_SIDE])
    trailing_level = math.nan
    if side != 0 and not math.isnan(cfg[C_TRAILING]):
        trailing_level = float(round_level(float(state[S_EXTREME] * (1.0 - side * cfg[C_TRAILING])),
                                           side, float(cfg[C_PRICE_STEP])))
    return (int(state[S_N_TRADES]), int(state[S_HELD]), int(state[S_SKIPPED]), side,
            int(state[S_ENTRY_INDEX]), float(state[S_ENTRY_PRICE]), float(state[S_SIZE]),
            float(state[S_ENTRY_FEE]), float(state[S_STOP]), float(state[S_TARGET]),
            trailing_level)


def simulate(open_, high, low, close, entries_long, exits_long, entries_short, exits_short,
             stop_price, take_profit_price, cash, fee, slippage, sizing, size_value, amount_step,
             min_amount, stop_loss, take_profit, trailing_stop, allow_short, equity, trades,
             price_step=0.0, min_notional=0.0):
    """Simulate one strategy over ``n`` bars from a flat ``cash`` state; fills ``equity[n]``
    and ``trades[k, :]``.

    Arrays: OHLC float64[n]; signal bool[n] (short arrays and the per-bar ``stop_price`` /
    ``take_profit_price`` levels may be empty = absent; short entries count only with
    ``allow_short``). Scalars as in EngineConfig, with ``sizing`` an int code and the three
    protective fractions NaN when off. ``trades`` is a float64 buffer with at least ``n``
    rows (entry bars strictly increase, so at most ``n - 1`` trades) and TRADE_COLUMNS
    columns. Returns :func:`summary` of the final state.
    """
    cfg = make_config(fee, slippage, sizing, size_value, amount_step, min_amount, stop_loss,
                      take_profit, trailing_stop, allow_short, price_step, min_notional)
    state = new_state(cash)
    backtest(open_, high, low, close, entries_long, exits_long, entries_short, exits_short,
             stop_price, take_profit_price, cfg, state, equity, trades)
    return summary(state, cfg)
