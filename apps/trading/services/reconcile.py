"""Reconciliation: the exchange's open orders, recent orders and trades and balances against ours.

Repaired, because the exchange proves it: an order it accepted that we never stored (its client
order id carries our deployment's prefix), a fill we missed, an order whose status moved on, a
`submitted` order the exchange does not know (it never arrived: failed). Flagged, and the
deployment paused with the reason, when it cannot be explained: a balance that differs from
the account's baseline plus every fill we booked, or an order we think is open that the
exchange does not know. A deployment never keeps trading on books it cannot trust.
"""
from __future__ import annotations

import logging
from datetime import timedelta
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from apps.alerts.services import alert_raise, alert_resolve
from apps.audit.services import audit_record

from ..brokers import Broker, BrokerError, broker_for
from ..brokers.base import OrderReport, deployment_prefix
from ..models import Deployment, DeploymentState, Fill, Mode, Order, OrderSide, OrderStatus, OrderType
from .accounts import account_auth_failed
from .deployments import deployment_pause
from .orders import TERMINAL, order_apply_report

log = logging.getLogger(__name__)

UNKNOWN_GRACE = timedelta(seconds=30)  # a just-submitted order may not be visible yet
RECONCILE_OVERLAP = timedelta(hours=1)  # re-read before the last reconciled point (late reports)


def _parse_bar(cid: str, prefix: str) -> tuple[int, int]:
    """(signal bar time ms, intent) from `tp-<dep>-<bar36>-<n>`; (0, 0) if it does not parse."""
    try:
        bar36, intent = cid[len(prefix):].split("-", 1)
        return int(bar36, 36) * 1000, int("".join(ch for ch in intent if ch.isdigit()) or 0)
    except ValueError:
        return 0, 0


def _adopt(deployment: Deployment, report: OrderReport, prefix: str, parent: Order | None = None) -> Order:
    """Store an order the exchange accepted for this deployment but we never stored: a leg of one
    of our OCO lists (then a child of that order), or one whose answer was lost."""
    bar, intent = _parse_bar(report.client_order_id, prefix)
    reason = ("Accepted by the exchange but not stored (crash or lost answer); recovered by reconciliation."
              if parent is None else f"Leg of protective order {parent.client_order_id}.")
    order = Order.objects.create(parent=parent,
        deployment=deployment, account=deployment.account, symbol=deployment.config.market.symbol,
        client_order_id=report.client_order_id, exchange_order_id=report.exchange_order_id,
        side=report.side or OrderSide.BUY, type=report.type if report.type in OrderType.values else OrderType.MARKET,
        amount=report.amount, price=report.price, status=OrderStatus.SUBMITTED, signal_bar_time=bar,
        intent_index=intent, reason_code="recovered" if parent is None else "oco_leg", reason=reason,
        submitted_at=timezone.now())
    audit_record("trading.order.recovered" if parent is None else "trading.order.leg", target=order, reason=reason,
                 metadata={"client_order_id": order.client_order_id, "exchange_order_id": order.exchange_order_id})
    return order


def expected_balances(deployment_account, assets: set[str], markets: dict) -> dict[str, Decimal]:
    """Baseline + the net effect of every fill booked on the account since the baseline."""
    baseline = deployment_account.balance_baseline or {}
    out = {a: Decimal(str(baseline.get(a, "0"))) for a in assets}
    fills = Fill.objects.filter(account=deployment_account).select_related("order")
    if deployment_account.baseline_at:
        # our clock on both sides (the exchange's trade times may run on another clock)
        fills = fills.filter(recorded_at__gte=deployment_account.baseline_at)
    for fill in fills:
        base, quote = markets[fill.order.symbol]
        sign = 1 if fill.order.side == OrderSide.BUY else -1
        if base in out:
            out[base] += sign * fill.amount
        if quote in out:
            out[quote] -= sign * fill.amount * fill.price
        if fill.fee_currency in out:
            out[fill.fee_currency] -= fill.fee
    return out


def deployment_reconcile(*, deployment: Deployment, broker: Broker | None = None, pause: bool = True) -> dict:
    """Reconcile one deployment's orders, fills and the account's balances with the exchange.

    Returns {"repaired": [...], "flagged": [...], "paused": bool}; each entry is a sentence.
    """
    result: dict = {"deployment": deployment.pk, "repaired": [], "flagged": [], "paused": False}
    account = deployment.account
    if account.mode == Mode.PAPER:
        result["note"] = "Paper account: our books are the only books."
        return result
    market = deployment.config.market
    symbol, prefix = market.symbol, deployment_prefix(deployment.pk)
    since = reconcile_since(deployment)
    try:
        broker = broker or broker_for(account)
        # every order and trade since the last reconciled point, page by page (not only the
        # exchange's latest page, which a busy account outgrows between two runs)
        seen = {r.client_order_id: r for r in broker.recent_orders(symbol, since)}
        seen.update({r.client_order_id: r for r in broker.open_orders(symbol)})
        trades = broker.my_trades(symbol, since)
        balances = broker.balance()
    except BrokerError as exc:
        result["flagged"].append(f"Could not read the exchange: {exc.message}")
        if exc.code == "auth_failed":
            account_auth_failed(account=account, message=exc.message)  # the account shows it; no retry loop
        return _finish(deployment, result, pause and exc.code == "auth_failed")

    ours = {o.client_order_id: o for o in Order.objects.filter(deployment=deployment)}
    by_exchange_id = {}
    for cid, report in seen.items():
        if not cid.startswith(prefix):
            continue
        order = ours.get(cid)
        if order is None:
            parent = ours.get(cid[:-1]) if cid[-1:] in ("t", "s") else None
            order = _adopt(deployment, report, prefix, parent=parent if parent and parent.type == "oco" else None)
            ours[cid] = order
            if order.parent_id is None:
                result["repaired"].append(f"Order {cid} was accepted by the exchange but not stored: recovered.")
        by_exchange_id[report.exchange_order_id] = order
        if order.status != report.status or order.filled != report.filled or not order.exchange_order_id:
            report.trades = [t for t in trades if t.order_id == report.exchange_order_id]
            before_fills = order.fills.count()
            order = order_apply_report(order=order, report=report, source="reconciliation")
            added = order.fills.count() - before_fills
            if added:
                result["repaired"].append(f"Order {cid}: {added} fill(s) we had missed were booked.")
            elif order.status != report.status:
                result["repaired"].append(f"Order {cid}: status {report.status} taken from the exchange.")
    # trades of our orders we have not booked (e.g. the status was already right)
    for trade in trades:
        order = by_exchange_id.get(trade.order_id)
        if order is None or Fill.objects.filter(account=account, exchange_trade_id=trade.trade_id).exists():
            continue
        report = seen[order.client_order_id]
        report.trades = [t for t in trades if t.order_id == trade.order_id]
        order_apply_report(order=order, report=report, source="reconciliation")
        result["repaired"].append(f"Order {order.client_order_id}: missed fill {trade.trade_id} booked.")
    # ours, unsettled, that the exchange did not mention
    grace = timezone.now() - UNKNOWN_GRACE
    for cid, order in ours.items():
        if order.status in TERMINAL or cid in seen:
            continue
        if order.type == OrderType.OCO:  # an order list: settled by its legs
            legs = list(order.protective.all())
            if legs and all(leg.status in TERMINAL for leg in legs):
                done = OrderStatus.FILLED if any(leg.status == OrderStatus.FILLED for leg in legs) else \
                    OrderStatus.CANCELED
                Order.objects.filter(pk=order.pk).update(status=done, closed_at=timezone.now())
                audit_record("trading.order.updated", target=order, reason="reconciliation: its legs are done",
                             changes={"status": [order.status, done]})
                result["repaired"].append(f"Protective order {cid} finished ({done}).")
            continue
        report = broker.fetch_order(symbol=symbol, client_order_id=cid)
        if report is not None:
            order_apply_report(order=order, report=report, source="reconciliation")
            result["repaired"].append(f"Order {cid}: status {report.status} taken from the exchange.")
        elif order.status in (OrderStatus.PENDING, OrderStatus.SUBMITTED) and order.updated_at < grace:
            Order.objects.filter(pk=order.pk).update(
                status=OrderStatus.FAILED, reason_code="never_arrived", closed_at=timezone.now(),
                reason="The exchange has no order with this client order id: it was never placed.")
            audit_record("trading.order.updated", target=order, reason="reconciliation: never reached the exchange",
                         changes={"status": [order.status, OrderStatus.FAILED]})
            result["repaired"].append(f"Order {cid} never reached the exchange: marked failed.")
        elif order.status in (OrderStatus.OPEN, OrderStatus.PARTIALLY_FILLED):
            result["flagged"].append(f"Order {cid} is open in our books but unknown to the exchange.")
    _check_balances(deployment, balances, result)
    times = [r.time_ms for r in seen.values() if r.time_ms] + [t.time_ms for t in trades if t.time_ms]
    result["since"] = since
    if not result["flagged"]:
        # next run pages on from here, re-reading an overlap (what arrives late is still seen)
        if times:
            until = max(times) - int(RECONCILE_OVERLAP.total_seconds() * 1000)
            Deployment.objects.filter(pk=deployment.pk).update(
                reconciled_until_ms=until if since is None else max(since, until))
    Deployment.objects.filter(pk=deployment.pk).update(reconciled_at=timezone.now())
    return _finish(deployment, result, pause and bool(result["flagged"]))


def _exchange_time(order: Order) -> int | None:
    """When the exchange says it took the order (its clock, ms), from its last answer."""
    raw = order.raw or {}
    for key in ("transactTime", "time", "transactionTime", "updateTime"):
        if str(raw.get(key) or "").isdigit():
            return int(raw[key])
    return None


def reconcile_since(deployment: Deployment) -> int | None:
    """Exchange time (ms) reconciliation reads orders and trades from: the last reconciled point,
    moved back to the oldest order we still hold unsettled; on the first run, our first order's
    exchange time. Always minus an overlap. None (the exchange's latest page) when nothing of
    ours has an exchange time yet."""
    overlap = int(RECONCILE_OVERLAP.total_seconds() * 1000)
    candidates = []
    if deployment.reconciled_until_ms is not None:
        candidates.append(deployment.reconciled_until_ms)
    orders = Order.objects.filter(deployment=deployment).order_by("created_at")
    if not candidates:
        first = next((t for t in (_exchange_time(o) for o in orders[:20]) if t is not None), None)
        first_fill = (Fill.objects.filter(order__deployment=deployment).order_by("time")
                      .values_list("time", flat=True).first())
        if first_fill is not None:
            first = min(first or 2 ** 62, int(first_fill.timestamp() * 1000))
        if first is not None:
            candidates.append(first - overlap)
    for order in orders.exclude(status__in=TERMINAL):
        t = _exchange_time(order)
        if t is not None:
            candidates.append(t - overlap)
    return min(candidates) if candidates else None


def _check_balances(deployment: Deployment, balances: dict, result: dict) -> None:
    account = deployment.account
    if not account.balance_baseline:
        result["flagged"].append("The account has no balance baseline (test its connection first): balances "
                                 "cannot be checked.")
        return
    markets = {}
    for d in account.deployments.select_related("config__market"):
        m = d.config.market
        markets[m.symbol] = (m.base, m.quote)
    assets = {a for pair in markets.values() for a in pair}
    steps = {}
    for d in account.deployments.select_related("config__market"):
        m = d.config.market
        steps[m.base] = min(steps.get(m.base, m.amount_step or Decimal("1e-8")), m.amount_step or Decimal("1e-8"))
        steps[m.quote] = Decimal("0.01")
    expected = expected_balances(account, assets, markets)
    for asset in sorted(assets):
        actual = balances[asset].total if asset in balances else Decimal(0)
        diff = actual - expected[asset]
        if abs(diff) > steps.get(asset, Decimal("1e-8")):
            result["flagged"].append(
                f"Unexplained {asset} balance: the exchange holds {actual.normalize():f} {asset}, our books explain "
                f"{expected[asset].normalize():f} {asset} (baseline plus our fills); difference "
                f"{diff.normalize():f} {asset}.")


def _finish(deployment: Deployment, result: dict, pause: bool) -> dict:
    with transaction.atomic():
        audit_record("trading.deployment.reconciled", target=deployment,
                     reason="; ".join(result["flagged"]) or "books match the exchange",
                     metadata={"repaired": result["repaired"], "flagged": result["flagged"]})
    deployment.refresh_from_db()
    if pause and deployment.state == DeploymentState.ACTIVE:
        deployment_pause(deployment=deployment,
                         reason="Reconciliation cannot trust the books: " + " ".join(result["flagged"]))
        result["paused"] = True
    key = f"reconcile:{deployment.pk}"
    if result["flagged"]:
        alert_raise(severity="critical" if result["paused"] else "error", source="trading",
                    title=f"Reconciliation mismatch: {deployment}" + (" (paused)" if result["paused"] else ""),
                    message=" ".join(result["flagged"]), target=deployment, key=key,
                    context={"flagged": result["flagged"], "repaired": result["repaired"], "paused": result["paused"]})
    else:
        alert_resolve(source="trading", key=key, reason="Reconciliation: the books match the exchange again.")
    return result

