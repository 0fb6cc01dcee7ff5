"""Closed trades rebuilt from fills: the one computation behind the trading pages' trade counts,
per-config performance (and graduation's trades in stage, which reads it) and the live side of
the tracking error (services.tracking.live_trades).

No query here: callers pass the Fill rows (with `order` loaded). Money is Decimal in the quote
currency of the fill's market; times are UTC.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from .models import OrderSide

ZERO = Decimal(0)


@dataclass
class RoundTrip:
    """One closed trade: from flat back to flat. PnL in quote currency, net of every fee;
    entry/exit prices are the amount-weighted averages of the entry and exit fills, size the
    amount entered (base currency)."""

    deployment_id: int
    symbol: str
    side: str
    opened_at: datetime
    closed_at: datetime
    pnl: Decimal
    entry_price: Decimal = ZERO
    exit_price: Decimal = ZERO
    size: Decimal = ZERO

    @property
    def won(self) -> bool:
        return self.pnl > 0


@dataclass
class _Book:
    amount: Decimal = ZERO
    flow: Decimal = ZERO  # quote currency in (+) and out (-), fees included
    opened_at: datetime | None = None
    side: str = "long"
    in_amount: Decimal = ZERO  # fills in the trade's direction (entries) ...
    in_value: Decimal = ZERO
    out_amount: Decimal = ZERO  # ... and against it (exits)
    out_value: Decimal = ZERO


def round_trips(fills, *, base_of: dict[str, str], steps: dict[str, Decimal]) -> list[RoundTrip]:
    """Closed trades rebuilt from fills (oldest first): a trade opens when a deployment's holding
    leaves zero and closes when it returns within one amount step of zero. `fills` are Fill rows
    with `order` loaded; `base_of` maps symbol → base currency (base-currency fees reduce the
    amount held and are valued at the fill price); `steps` maps symbol → amount step."""
    books: dict[tuple[int, str], _Book] = defaultdict(_Book)
    trips: list[RoundTrip] = []
    for fill in sorted(fills, key=lambda f: (f.time, f.pk)):
        order = fill.order
        key = (order.deployment_id, order.symbol)
        book = books[key]
        base = base_of.get(order.symbol, "")
        fee_base = fill.fee if fill.fee_currency == base else ZERO
        fee_quote = ZERO if fill.fee_currency == base else fill.fee
        sign = 1 if order.side == OrderSide.BUY else -1
        if book.opened_at is None:
            book.opened_at, book.side = fill.time, ("long" if sign > 0 else "short")
        if (sign > 0) == (book.side == "long"):
            book.in_amount += fill.amount
            book.in_value += fill.amount * fill.price
        else:
            book.out_amount += fill.amount
            book.out_value += fill.amount * fill.price
        book.amount += sign * fill.amount - fee_base
        book.flow += -sign * fill.amount * fill.price - fee_quote - fee_base * fill.price
        if abs(book.amount) < steps.get(order.symbol, Decimal("1e-12")):
            # the leftover dust below one step is valued at this fill's price
            pnl = book.flow + book.amount * fill.price
            exit_price = book.out_value / book.out_amount if book.out_amount else fill.price
            trips.append(RoundTrip(order.deployment_id, order.symbol, book.side, book.opened_at, fill.time, pnl,
                                   entry_price=book.in_value / book.in_amount, exit_price=exit_price,
                                   size=book.in_amount))
            books[key] = _Book()
    return trips
