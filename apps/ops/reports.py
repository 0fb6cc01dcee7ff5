"""Data exports and the tax report: a user's own trading records, times in their time zone.

- `trade_rows`, `order_rows`, `portfolio_rows`: (header, rows) for CSV, times shown in `zone`.
- `fifo_report`: realised gains per financial year, first in first out, per account and symbol.
  A buy opens a lot (its cost: amount × price plus a fee paid in the quote currency; a fee paid in
  the base currency lowers the amount received). A sell takes the oldest lots first; each piece is
  one disposal row with its acquisition date, cost, proceeds (its share of amount × price less the
  sell's quote fee) and gain. Fees in a third currency (e.g. BNB) are listed, not converted. A
  sell beyond the holdings we recorded (assets bought elsewhere) is reported as unmatched, with
  no gain invented for it. The financial year starts on the 1st of `first_month` at midnight in
  `zone`; year Y runs from that date in Y to the same date in Y+1.
Only the user's own deployments count: a tax report is personal, even for operators.
"""
from __future__ import annotations

from collections import defaultdict, deque
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from apps.trading.models import Fill, Order, OrderSide, PortfolioSnapshot

ZERO = Decimal(0)
CENT = Decimal("0.00000001")  # reported to 8 decimals (the quote currency's precision is not stored here)


def _local(value: datetime | None, zone: ZoneInfo) -> str:
    return value.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S") if value else ""


def _symbol_parts(symbol: str) -> tuple[str, str]:
    base, _, quote = symbol.partition("/")
    return base, quote.split(":")[0]


def _fills(user):
    return (Fill.objects.filter(order__deployment__owner=user)
            .select_related("order__deployment", "account").order_by("time", "id"))


def trade_rows(user, zone: ZoneInfo):
    header = ["time", "deployment", "account", "symbol", "side", "amount", "price", "value", "fee", "fee_currency",
              "order", "exchange_trade_id", "source"]

    def rows():
        for f in _fills(user).iterator(chunk_size=2000):
            yield [_local(f.time, zone), f.order.deployment.name, f.account.name, f.order.symbol, f.order.side,
                   f.amount, f.price, f.amount * f.price, f.fee, f.fee_currency, f.order.client_order_id,
                   f.exchange_trade_id, f.source]
    return header, rows()


def order_rows(user, zone: ZoneInfo):
    header = ["created", "deployment", "symbol", "side", "type", "amount", "price", "status", "filled", "average",
              "fee", "fee_currency", "client_order_id", "exchange_order_id", "reason", "closed"]

    def rows():
        for o in (Order.objects.filter(deployment__owner=user).select_related("deployment")
                  .order_by("created_at", "id").iterator(chunk_size=2000)):
            yield [_local(o.created_at, zone), o.deployment.name, o.symbol, o.side, o.type, o.amount, o.price,
                   o.status, o.filled, o.average, o.fee, o.fee_currency, o.client_order_id, o.exchange_order_id,
                   o.reason, _local(o.closed_at, zone)]
    return header, rows()


def portfolio_rows(user, zone: ZoneInfo):
    header = ["time", "account", "deployment", "equity", "cash", "positions_value"]

    def rows():
        for s in (PortfolioSnapshot.objects.filter(account__owner=user).select_related("account", "deployment")
                  .order_by("time", "id").iterator(chunk_size=2000)):
            yield [_local(s.time, zone), s.account.name, s.deployment.name if s.deployment_id else "", s.equity,
                   s.cash, s.positions_value]
    return header, rows()


@dataclass
class _Lot:
    amount: Decimal
    unit_cost: Decimal
    acquired: datetime


def financial_year_bounds(year: int, first_month: int, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """[start, end) of financial year `year` in `zone` (aware datetimes)."""
    if not 1 <= first_month <= 12:
        raise ValueError("first_month must be 1 to 12")
    return datetime(year, first_month, 1, tzinfo=zone), datetime(year + 1, first_month, 1, tzinfo=zone)


def fifo_report(*, user, year: int, first_month: int = 1, zone: ZoneInfo) -> dict:
    """Realised gains of financial year `year` by FIFO (see the module docstring). Amounts are
    Decimal in each symbol's quote currency; `totals` per quote currency."""
    start, end = financial_year_bounds(year, first_month, zone)
    lots: dict[tuple[int, str], deque[_Lot]] = defaultdict(deque)
    disposals, unmatched, other_fees = [], [], []
    for fill in _fills(user).iterator(chunk_size=2000):
        order = fill.order
        base, quote = _symbol_parts(order.symbol)
        key = (fill.account_id, order.symbol)
        in_year = start <= fill.time < end
        quote_fee = fill.fee if fill.fee_currency == quote else ZERO
        base_fee = fill.fee if fill.fee_currency == base else ZERO
        if fill.fee and fill.fee_currency not in (base, quote) and in_year:
            other_fees.append({"time": _local(fill.time, zone), "symbol": order.symbol, "fee": fill.fee,
                               "currency": fill.fee_currency})
        if order.side == OrderSide.BUY:
            received = fill.amount - base_fee
            if received > 0:
                lots[key].append(_Lot(received, (fill.amount * fill.price + quote_fee) / received, fill.time))
            continue
        # a sell: the base fee is more base sold; the quote fee lowers the proceeds
        to_match = fill.amount + base_fee
        net_proceeds = fill.amount * fill.price - quote_fee
        queue = lots[key]
        while to_match > 0 and queue:
            lot = queue[0]
            take = min(lot.amount, to_match)
            share = take / (fill.amount + base_fee)
            cost, proceeds = (take * lot.unit_cost).quantize(CENT), (net_proceeds * share).quantize(CENT)
            if in_year:
                disposals.append({"sold": _local(fill.time, zone), "acquired": _local(lot.acquired, zone),
                                  "account": fill.account.name, "symbol": order.symbol, "amount": take,
                                  "cost": cost, "proceeds": proceeds, "gain": proceeds - cost, "currency": quote})
            lot.amount -= take
            to_match -= take
            if lot.amount <= 0:
                queue.popleft()
        if to_match > 0 and in_year:
            unmatched.append({"sold": _local(fill.time, zone), "account": fill.account.name, "symbol": order.symbol,
                              "amount": to_match, "note": "sold more than the holdings recorded here (bought "
                                                          "elsewhere or transferred in): no cost basis, no gain "
                                                          "computed"})
    totals: dict[str, dict] = {}
    for d in disposals:
        t = totals.setdefault(d["currency"], {"proceeds": ZERO, "cost": ZERO, "gain": ZERO, "disposals": 0})
        t["proceeds"] += d["proceeds"]
        t["cost"] += d["cost"]
        t["gain"] += d["gain"]
        t["disposals"] += 1
    return {"year": year, "first_month": first_month, "timezone": str(zone),
            "period": {"start": start.isoformat(), "end": end.isoformat()},
            "disposals": disposals, "totals": totals, "unmatched": unmatched, "other_fees": other_fees}


TAX_HEADER = ["sold", "acquired", "account", "symbol", "amount", "cost", "proceeds", "gain", "currency"]
