"""The bar-by-bar simulation loop, compiled with numba.

This module is the single implementation of the trading rules (see the package docstring
and README.md). Everything here works on plain numpy arrays and scalars so that numba can
compile it; :func:`quant.engine.run` wraps it with validation and friendly types.
Run with ``NUMBA_DISABLE_JIT=1`` the very same code executes as plain Python, which is what
the benchmark compares against.
"""

from __future__ import annotations

import math

import numpy as np

from quant._jit import jit

# Exit reasons stored in the trade log (small ints; names in EXIT_REASONS).
SIGNAL, STOP_LOSS, TAKE_PROFIT, TRAILING_STOP = 0, 1, 2, 3
EXIT_REASONS = {SIGNAL: "signal", STOP_LOSS: "stop_loss", TAKE_PROFIT: "take_profit",
                TRAILING_STOP: "trailing_stop"}

# Sizing modes (EngineConfig.sizing).
FRACTION, NOTIONAL, RISK = 0, 1, 2
SIZING_CODES = {"fraction": FRACTION, "notional": NOTIONAL, "risk": RISK}

# Columns of the float64 trade buffer filled by simulate().
(COL_ENTRY_INDEX, COL_EXIT_INDEX, COL_SIDE, COL_ENTRY_PRICE, COL_EXIT_PRICE, COL_SIZE,
 COL_FEES, COL_PNL, COL_RETURN, COL_REASON) = range(10)
TRADE_COLUMNS = 10


@jit(nogil=True)
def order_size(direction, price, cash, fee, slippage, sizing, size_value, amount_step,
               min_amount, stop_level):
    """Units to buy (direction +1) or sell short (-1) at fill ``price`` with ``cash`` equity.

    The budget is what may be spent on notional plus the entry fee: ``size_value * cash``
    (fraction), ``min(size_value, cash)`` (notional) or ``cash`` (risk, where the size is
    ``size_value * cash`` divided by the loss per unit at ``stop_level`` including fees and
    slippage). The size is rounded DOWN to ``amount_step`` and then stepped down until
    ``size * price + size * price * fee <= budget`` holds in floating point. Returns 0.0 when
    the entry must be skipped (no budget, no valid stop for risk sizing, below ``min_amount``).
    """
    if cash <= 0.0:
        return 0.0
    unit_cost = price * (1.0 + fee)
    if sizing == FRACTION:
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
    if size <= 0.0 or size < min_amount:
        return 0.0
    return size


@jit(nogil=True)
def _record_exit(trades, k, entry_index, exit_index, side, entry_price, exit_price, size,
                 entry_fee, fee, reason):
    """Write trade ``k`` and return the cash change of closing it (gross P&L minus exit fee)."""
    gross = side * size * (exit_price - entry_price)
    exit_fee = size * exit_price * fee
    pnl = gross - entry_fee - exit_fee
    if k < trades.shape[0]:
        trades[k, COL_ENTRY_INDEX] = entry_index
        trades[k, COL_EXIT_INDEX] = exit_index
        trades[k, COL_SIDE] = side
        trades[k, COL_ENTRY_PRICE] = entry_price
        trades[k, COL_EXIT_PRICE] = exit_price
        trades[k, COL_SIZE] = size
        trades[k, COL_FEES] = entry_fee + exit_fee
        trades[k, COL_PNL] = pnl
        trades[k, COL_RETURN] = pnl / (size * entry_price + entry_fee)
        trades[k, COL_REASON] = reason
    return gross - exit_fee


@jit(nogil=True)
def simulate(open_, high, low, close, entries_long, exits_long, entries_short, exits_short,
             stop_price, take_profit_price, cash, fee, slippage, sizing, size_value, amount_step,
             min_amount, stop_loss, take_profit, trailing_stop, allow_short, equity, trades):
    """Simulate one strategy over ``n`` bars; fills ``equity[n]`` and ``trades[k, :]``.

    Arrays: OHLC float64[n]; signal bool[n] (short arrays and the per-bar ``stop_price`` /
    ``take_profit_price`` levels may be empty = absent). Scalars as in EngineConfig, with
    ``sizing`` an int code and the three protective fractions NaN when off. ``trades`` is a
    float64 buffer with at least ``n`` rows (entry bars strictly increase, so at most
    ``n - 1`` trades) and TRADE_COLUMNS columns.

    Returns ``(n_trades, bars_held, skipped_entries, side, entry_index, entry_price, size,
    entry_fee, stop_level, take_profit_level, trailing_level)`` where the last eight
    describe a position still open after the last bar (side 0 = flat).
    """
    n = close.shape[0]
    has_short = allow_short and entries_short.shape[0] == n and exits_short.shape[0] == n
    has_stop_prices = stop_price.shape[0] == n
    has_tp_prices = take_profit_price.shape[0] == n
    use_trailing = not math.isnan(trailing_stop)
    buy_slip = 1.0 + slippage
    sell_slip = 1.0 - slippage

    balance = cash  # equity excluding the open position's unrealised P&L
    side = 0
    size = 0.0
    entry_price = 0.0
    entry_fee = 0.0
    entry_index = -1
    sl_level = np.nan
    tp_level = np.nan
    extreme = np.nan  # highest high (long) / lowest low (short) since the order was sent

    pending_exit = False
    pending_entry = 0
    pending_sl = np.nan
    pending_tp = np.nan
    pending_ref = np.nan

    n_trades = 0
    held = 0
    skipped = 0

    for i in range(n):
        bar_open = open_[i]

        # 1. Orders sent at the previous close fill at this open: exit first, then entry.
        if pending_exit:
            fill = bar_open * sell_slip if side > 0 else bar_open * buy_slip
            balance += _record_exit(trades, n_trades, entry_index, i, side, entry_price, fill,
                                    size, entry_fee, fee, SIGNAL)
            n_trades += 1
            side = 0
            size = 0.0
            pending_exit = False
        if pending_entry != 0:
            direction = pending_entry
            pending_entry = 0
            fill = bar_open * buy_slip if direction > 0 else bar_open * sell_slip
            risk_level = pending_sl
            if use_trailing:
                trail = pending_ref * (1.0 - direction * trailing_stop)
                if math.isnan(risk_level) or direction * (trail - risk_level) > 0.0:
                    risk_level = trail  # the tighter of the two stops bounds the loss
            units = order_size(direction, fill, balance, fee, slippage, sizing, size_value,
                               amount_step, min_amount, risk_level)
            if units > 0.0:
                side = direction
                size = units
                entry_price = fill
                entry_fee = units * fill * fee
                balance -= entry_fee
                entry_index = i
                sl_level = pending_sl
                tp_level = pending_tp
                extreme = pending_ref
            else:
                skipped += 1

        # 2. Protective exits during the bar; the stop is checked before the target.
        if side != 0:
            held += 1
            level = sl_level
            reason = STOP_LOSS
            if use_trailing:
                trail = extreme * (1.0 - side * trailing_stop)
                if math.isnan(level) or side * (trail - level) > 0.0:
                    level = trail
                    reason = TRAILING_STOP
            exit_fill = np.nan
            if side > 0:
                if low[i] <= level:
                    exit_fill = min(bar_open, level) * sell_slip  # gapped through: the open
                elif high[i] >= tp_level:
                    exit_fill = max(bar_open, tp_level) * sell_slip
                    reason = TAKE_PROFIT
                else:
                    extreme = max(extreme, high[i])
            else:
                if high[i] >= level:
                    exit_fill = max(bar_open, level) * buy_slip
                elif low[i] <= tp_level:
                    exit_fill = min(bar_open, tp_level) * buy_slip
                    reason = TAKE_PROFIT
                else:
                    extreme = min(extreme, low[i])
            if not math.isnan(exit_fill):
                balance += _record_exit(trades, n_trades, entry_index, i, side, entry_price,
                                        exit_fill, size, entry_fee, fee, reason)
                n_trades += 1
                side = 0
                size = 0.0

        # 3. Mark to the close.
        equity[i] = balance + side * size * (close[i] - entry_price) if side != 0 else balance

        # 4. Read this bar's signals; orders go out for the next open (none after the last bar).
        if i < n - 1:
            if side > 0 and exits_long[i]:
                pending_exit = True
            elif side < 0 and has_short and exits_short[i]:
                pending_exit = True
            if side == 0 or pending_exit:
                go_long = entries_long[i] and not exits_long[i] and side <= 0
                go_short = has_short and entries_short[i] and not exits_short[i] and side >= 0
                direction = 0
                if go_long and not go_short:
                    direction = 1
                elif go_short and not go_long:
                    direction = -1
                if direction != 0:
                    c = close[i]
                    pending_entry = direction
                    pending_ref = c
                    pending_sl = np.nan
                    if has_stop_prices and not math.isnan(stop_price[i]):
                        pending_sl = stop_price[i]
                    elif not math.isnan(stop_loss):
                        pending_sl = c * (1.0 - direction * stop_loss)
                    pending_tp = np.nan
                    if has_tp_prices and not math.isnan(take_profit_price[i]):
                        pending_tp = take_profit_price[i]
                    elif not math.isnan(take_profit):
                        pending_tp = c * (1.0 + direction * take_profit)

    trailing_level = np.nan
    if side != 0 and use_trailing:
        trailing_level = extreme * (1.0 - side * trailing_stop)
    return (n_trades, held, skipped, side, entry_index, entry_price, size, entry_fee,
            sl_level, tp_level, trailing_level)
