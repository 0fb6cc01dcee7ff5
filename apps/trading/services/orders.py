"""Orders, fills and positions: placing an order exactly once, and booking what the exchange did.

`order_place` stores the order row (keyed by its deterministic client order id) and commits it
BEFORE anything is sent. A crash or timeout at any later point leaves a row in `pending` or
`submitted`; calling `order_place` again with the same (deployment, bar, intent) continues that
row: the broker finds the order the exchange already accepted (by client order id) instead of
placing a second. Reconciliation (reconcile.py) settles rows nobody comes back for.
"""
from __future__ import annotations

import logging
from datetime import datetime, timezone as dt_timezone
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.audit.services import audit_record
from quant.engine import core
from tradepulse.core.events import publish_for

from ..brokers import Broker, BrokerError, broker_for
from ..brokers.base import (OrderReport, OrderRequest, ProtectiveRequest, TradeReport, check_minimums, client_order_id,
                            round_amount, round_price)
from ..brokers.paper import PaperBroker
from ..models import Deployment, Fill, Mode, Order, OrderSide, OrderStatus, OrderType, Position
from .accounts import account_auth_failed
from .deployments import deployment_running

log = logging.getLogger(__name__)

TERMINAL = (OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.EXPIRED, OrderStatus.REJECTED, OrderStatus.FAILED)
REFUSED_BY_EXCHANGE = ("insufficient_balance", "invalid_order", "unknown_symbol", "auth_failed", "below_minimum",
                       "duplicate", "not_supported", "exchange_error", "not_found")


def order_place(*, deployment: Deployment, side: str, amount: Decimal, signal_bar_time: int, intent_index: int = 0,
                type: str = "market", price: Decimal | None = None, stop_price: Decimal | None = None,
                take_profit_price: Decimal | None = None, reference_price: Decimal | None = None,
                decision: dict | None = None, verdict: dict | None = None, broker: Broker | None = None) -> Order:
    """Place one order intent of `deployment`, idempotently.

    `amount` (base currency) is rounded DOWN to the lot step, `price`/`stop_price` to the tick;
    below the minimum amount or notional (at `price` or `reference_price`, the expected fill) the
    order is stored as failed with the reason and nothing is sent. A verdict {"approved": false,
    "reason": …} from the pre-trade check stores it as refused, also unsent. Exchange refusals
    (insufficient balance, invalid order, unknown symbol, auth failure) are stored with a clear
    reason; an auth failure also pauses the account's deployments. A network error or timeout
    leaves the order `submitted` (outcome unknown) for the next call or reconciliation to settle.
    Returns the Order row as it stands.
    """
    cid = client_order_id(deployment.pk, signal_bar_time, intent_index)
    market = deployment.config.market
    account = deployment.account
    with transaction.atomic():
        order, created = Order.objects.select_for_update().get_or_create(
            client_order_id=cid,
            defaults=dict(
                deployment=deployment, account=account, symbol=market.symbol, side=side, type=type,
                amount=round_amount(Decimal(amount), market.amount_step),
                price=round_price(Decimal(price), market.price_step) if price is not None else None,
                stop_price=round_price(Decimal(stop_price), market.price_step) if stop_price is not None else None,
                take_profit_price=(round_price(Decimal(take_profit_price), market.price_step)
                                   if take_profit_price is not None else None),
                signal_bar_time=signal_bar_time, intent_index=intent_index, decision=decision or {},
                verdict=verdict or {}, status=OrderStatus.PENDING,
            ),
        )
        if created:
            if side not in OrderSide.values:
                _refuse(order, "invalid_order", f"Unknown side {side!r}: buy or sell.")
            elif verdict is not None and verdict.get("approved") is False:
                _refuse(order, "risk_denied", f"Refused by the pre-trade check: {verdict.get('reason') or 'no reason'}")
            else:
                try:
                    check_minimums(market, order.amount, order.price or reference_price)
                except BrokerError as exc:
                    _refuse(order, exc.code, exc.message)
            audit_record("trading.order.created", target=order, reason=order.reason or "order intent",
                         metadata={"client_order_id": cid, "side": side, "amount": order.amount, "type": type,
                                   "status": order.status, "signal_bar_time": signal_bar_time})
        if order.status in TERMINAL or order.status in (OrderStatus.OPEN, OrderStatus.PARTIALLY_FILLED):
            _publish(order)
            return order  # already settled, or live on the exchange: never send it again
        order.status, order.submitted_at = OrderStatus.SUBMITTED, order.submitted_at or timezone.now()
        order.save(update_fields=["status", "submitted_at", "updated_at"])
    # committed: from here a crash leaves a `submitted` row keyed by the client order id
    try:
        broker = broker or broker_for(account)
        report = broker.place_order(OrderRequest(
            client_order_id=cid, symbol=order.symbol, side=order.side, amount=order.amount, type=order.type,
            price=order.price, stop_price=order.stop_price))
    except BrokerError as exc:
        return _placement_failed(order, exc)
    return order_apply_report(order=order, report=report, source="order")


def order_protect(*, entry: Order, stop_price: Decimal, take_profit_price: Decimal | None = None,
                  intent_index: int | None = None, broker: Broker | None = None) -> Order:
    """Rest protective exits for a filled entry on the exchange: one OCO (take-profit + stop-loss)
    where the exchange has it, else a native stop (the engine then watches the target). Same
    idempotency as order_place: the row is stored first under its own client order id
    (intent = the entry's + 1 unless given); OCO legs carry it with a suffix ("t"/"s"), so
    reconciliation books their fills under this order. A broker that can rest neither leaves
    the order failed with reason "not_supported": the engine manages the exits."""
    deployment, market = entry.deployment, entry.deployment.config.market
    intent = entry.intent_index + 1 if intent_index is None else intent_index
    cid = client_order_id(deployment.pk, entry.signal_bar_time, intent)
    side = OrderSide.SELL if entry.side == OrderSide.BUY else OrderSide.BUY
    amount = round_amount(entry.filled - (entry.fee if entry.fee_currency == market.base else Decimal(0)),
                          market.amount_step)
    with transaction.atomic():
        order, created = Order.objects.select_for_update().get_or_create(client_order_id=cid, defaults=dict(
            deployment=deployment, account=entry.account, symbol=entry.symbol, side=side,
            type=OrderType.OCO if take_profit_price is not None else OrderType.STOP_LOSS, amount=amount,
            stop_price=round_price(Decimal(stop_price), market.price_step),
            take_profit_price=(round_price(Decimal(take_profit_price), market.price_step)
                               if take_profit_price is not None else None),
            signal_bar_time=entry.signal_bar_time, intent_index=intent, parent=entry, status=OrderStatus.PENDING,
            decision={"protects": entry.client_order_id}))
        if created:
            audit_record("trading.order.created", target=order, reason="protective exits for " + entry.client_order_id,
                         metadata={"client_order_id": cid, "stop": order.stop_price, "target": order.take_profit_price})
        if order.status not in (OrderStatus.PENDING, OrderStatus.SUBMITTED):
            return order
        order.status, order.submitted_at = OrderStatus.SUBMITTED, order.submitted_at or timezone.now()
        order.save(update_fields=["status", "submitted_at", "updated_at"])
    try:
        broker = broker or broker_for(order.account)
        report = broker.place_protective(ProtectiveRequest(
            client_order_id=cid, symbol=order.symbol, side=order.side, amount=order.amount,
            stop_price=order.stop_price, take_profit_price=order.take_profit_price))
    except BrokerError as exc:
        return _placement_failed(order, exc)
    return order_apply_report(order=order, report=report, source="order")


def _refuse(order: Order, code: str, message: str) -> None:
    order.status, order.reason_code, order.reason = OrderStatus.FAILED, code[:32], message
    order.closed_at = timezone.now()
    order.save()


def _placement_failed(order: Order, exc: BrokerError) -> Order:
    with transaction.atomic():
        order = Order.objects.select_for_update().get(pk=order.pk)
        order.reason_code, order.reason = exc.code, exc.message
        if exc.retryable:
            # outcome unknown: the exchange may hold it; the next call or reconciliation will know
            order.reason = f"Outcome unknown ({exc.message}); it will be checked by its client order id."
        else:
            order.status, order.closed_at = OrderStatus.REJECTED, timezone.now()
        order.save()
        audit_record("trading.order.failed", target=order, reason=order.reason,
                     metadata={"client_order_id": order.client_order_id, "code": exc.code, "status": order.status})
        _publish(order)
    if exc.code == "auth_failed":
        account_auth_failed(account=order.account, message=exc.message)
    return order


def order_apply_report(*, order: Order, report: OrderReport, source: str) -> Order:
    """Book what the exchange says about `order`: status, filled, average, fee, its trades (each
    one Fill, once) and the position they change."""
    with transaction.atomic():
        order = Order.objects.select_for_update().get(pk=order.pk)
        before = order.status
        order.exchange_order_id = report.exchange_order_id or order.exchange_order_id
        order.status = report.status if report.status in OrderStatus.values else order.status
        order.filled = max(order.filled, report.filled)
        order.average = report.average if report.average is not None else order.average
        if report.fee:
            order.fee, order.fee_currency = report.fee, report.fee_currency
        order.raw = report.raw or order.raw
        if order.status in TERMINAL and not order.closed_at:
            order.closed_at = timezone.now()
        if order.status not in (OrderStatus.REJECTED, OrderStatus.FAILED) and order.reason_code == "network":
            order.reason_code, order.reason = "", ""
        order.save()
        new_fills = [fill_record(order=order, trade=t, source=source) for t in report.trades]
        new_fills = [f for f in new_fills if f is not None]
        if before != order.status or new_fills:
            audit_record("trading.order.updated", target=order, reason=f"exchange report ({source})",
                         changes={"status": [before, order.status]} if before != order.status else {},
                         metadata={"filled": order.filled, "average": order.average,
                                   "fills": [f.exchange_trade_id for f in new_fills]})
        _publish(order)
    return order


def fill_record(*, order: Order, trade: TradeReport, source: str) -> Fill | None:
    """Store one exchange trade of `order` and apply it to the position; None if already stored."""
    if Fill.objects.filter(account_id=order.account_id, exchange_trade_id=trade.trade_id).exists():
        return None
    try:
        with transaction.atomic():
            fill = Fill.objects.create(
                order=order, account_id=order.account_id, exchange_trade_id=trade.trade_id, amount=trade.amount,
                price=trade.price, fee=trade.fee, fee_currency=trade.fee_currency, source=source,
                time=datetime.fromtimestamp(trade.time_ms / 1000, tz=dt_timezone.utc) if trade.time_ms
                else timezone.now())
    except IntegrityError:
        return None  # stored concurrently
    position_apply_fill(order=order, fill=fill)
    publish_for(order.deployment, "trading.fill.recorded", {
        "id": fill.pk, "order": order.pk, "deployment": order.deployment_id, "amount": fill.amount,
        "price": fill.price, "fee": fill.fee, "fee_currency": fill.fee_currency, "time": fill.time})
    return fill


def position_apply_fill(*, order: Order, fill: Fill) -> Position:
    """Apply one fill to the deployment's position in the symbol (average entry price, realised
    PnL net of fees, fees in quote). A base-currency fee (Binance buys) reduces the amount held."""
    market = order.deployment.config.market
    with transaction.atomic():
        position, _ = Position.objects.select_for_update().get_or_create(deployment_id=order.deployment_id,
                                                                         symbol=order.symbol)
        amount, price, fee = fill.amount, fill.price, fill.fee
        fee_base = fee if fill.fee_currency == market.base else Decimal(0)
        fee_quote = fee if fill.fee_currency == market.quote else Decimal(0)
        held, entry = position.amount, position.entry_price or Decimal(0)
        if order.side == OrderSide.BUY:
            net = amount - fee_base
            cost = amount * price + fee_quote
            position.amount = held + net
            position.entry_price = ((held * entry + cost) / position.amount) if position.amount else None
        else:
            closing = min(amount, max(held, Decimal(0)))
            proceeds = closing * price - fee_quote
            position.realised_pnl += proceeds - closing * entry
            position.amount = held - amount
            if position.amount <= 0:
                position.entry_price = price if position.amount < 0 else None
        position.fees += fee_quote + fee_base * price
        position.side = "long" if position.amount > 0 else ("short" if position.amount < 0 else "flat")
        position.mark_price = price
        position.unrealised_pnl = ((price - position.entry_price) * position.amount
                                   if position.entry_price is not None else Decimal(0))
        position.save()
        publish_for(order.deployment, "trading.position.updated", {
            "id": position.pk, "deployment": order.deployment_id, "symbol": position.symbol, "side": position.side,
            "amount": position.amount, "entry_price": position.entry_price, "realised_pnl": position.realised_pnl,
            "unrealised_pnl": position.unrealised_pnl, "mark_price": position.mark_price, "fees": position.fees})
    return position


def order_refresh(*, order: Order, broker: Broker | None = None) -> Order:
    """Ask the exchange about an open or unsettled order (by client order id) and book it."""
    if order.status in TERMINAL:
        return order
    broker = broker or broker_for(order.account)
    try:
        report = broker.fetch_order(symbol=order.symbol, client_order_id=order.client_order_id,
                                    exchange_order_id=order.exchange_order_id)
    except BrokerError as exc:
        log.warning("refresh of %s failed: %s", order.client_order_id, exc.message)
        return order
    if report is None:
        return order
    return order_apply_report(order=order, report=report, source="poll")


def order_cancel(*, order: Order, reason: str, broker: Broker | None = None, actor=None) -> Order:
    """Cancel an open order (audited with the reason). Exchange orders are cancelled on the
    exchange; a paper order rests with the engine, so it is cancelled there too (the pending
    entry or exit leaves the deployment's engine state) under the deployment's run lease."""
    if order.status in TERMINAL:
        return order
    if order.account.mode == Mode.PAPER and broker is None:
        return _paper_cancel(order, reason, actor)
    broker = broker or broker_for(order.account)
    try:
        report = broker.cancel_order(symbol=order.symbol, client_order_id=order.client_order_id,
                                     exchange_order_id=order.exchange_order_id)
    except BrokerError as exc:
        if exc.code != "not_found":
            raise
        return order_refresh(order=order, broker=broker)
    audit_record("trading.order.cancel_requested", target=order, reason=reason, actor=actor)
    return order_apply_report(order=order, report=report, source="cancel")


def _paper_cancel(order: Order, reason: str, actor) -> Order:
    deployment = order.deployment
    with deployment_running(deployment, owner=f"cancel-{order.pk}"):
        with transaction.atomic():
            d = Deployment.objects.select_for_update().get(pk=deployment.pk)
            values = (d.engine_state or {}).get("values")
            if values and order.type == OrderType.MARKET:
                side = values[core.S_SIDE] or 0
                closing = side != 0 and ((side > 0) == (order.side == OrderSide.SELL))
                values[core.S_PEND_EXIT if closing else core.S_PEND_ENTRY] = 0.0
                Deployment.objects.filter(pk=d.pk).update(engine_state=d.engine_state)
            broker = PaperBroker(order.account, symbol=order.symbol, resting=[OrderReport(
                client_order_id=order.client_order_id, exchange_order_id=order.exchange_order_id, symbol=order.symbol,
                side=order.side, type=order.type, status="open", amount=order.amount, filled=order.filled,
                average=order.average)])
            report = broker.cancel_order(symbol=order.symbol, client_order_id=order.client_order_id)
            audit_record("trading.order.cancel_requested", target=order, reason=reason, actor=actor)
            return order_apply_report(order=order, report=report, source="cancel")


def _publish(order: Order) -> None:
    publish_for(order.deployment, "trading.order.updated", {
        "id": order.pk, "deployment": order.deployment_id, "client_order_id": order.client_order_id,
        "side": order.side, "type": order.type, "amount": order.amount, "status": order.status,
        "filled": order.filled, "average": order.average, "reason": order.reason, "reason_code": order.reason_code,
        "signal_bar_time": order.signal_bar_time})
