"""Reconciliation reads every order and trade since its last reconciled point, page by page, not
only the exchange's latest page: an order accepted but never stored, older than a page of newer
orders, is still recovered; the next run starts from where this one ended (with an overlap)."""
from __future__ import annotations

from decimal import Decimal

from apps.trading import services
from apps.trading.brokers import CcxtBroker
from apps.trading.brokers import ccxt as ccxt_broker
from apps.trading.brokers.base import OrderRequest, client_order_id
from apps.trading.models import Deployment, Order, OrderStatus
from apps.trading.services.reconcile import RECONCILE_OVERLAP

from .conftest import BAR


def _place(deployment, intent):
    return services.order_place(deployment=deployment, side="buy", amount=Decimal("0.001"), signal_bar_time=BAR,
                                intent_index=intent, reference_price=Decimal("37000"),
                                verdict={"approved": True})


def test_reconciliation_pages_past_the_latest_page_to_recover_an_old_unstored_order(deployment, sim, monkeypatch):
    monkeypatch.setattr(ccxt_broker, "PAGE_LIMIT", 3)
    first = _place(deployment, 0)
    assert first.status == OrderStatus.FILLED
    sim.advance(1_000)
    lost = client_order_id(deployment.pk, BAR, 1)  # accepted by the exchange, the worker died before storing it
    CcxtBroker(deployment.account).place_order(OrderRequest(client_order_id=lost, symbol="BTC/USDT", side="buy",
                                                            amount=Decimal("0.001")))
    for intent in range(2, 9):  # a busy account: newer orders push it out of the latest page
        sim.advance(1_000)
        _place(deployment, intent)
    broker = CcxtBroker(deployment.account)
    latest_page = broker._call("fetch_orders", "BTC/USDT", None, ccxt_broker.PAGE_LIMIT, safe=True)
    assert lost not in [o["clientOrderId"] for o in latest_page]

    result = services.deployment_reconcile(deployment=deployment)
    recovered = Order.objects.get(client_order_id=lost)
    assert recovered.status == OrderStatus.FILLED and recovered.fills.count() == 1
    assert result["flagged"] == [] and any("recovered" in line for line in result["repaired"])
    deployment.refresh_from_db()
    assert deployment.state == "active"
    overlap = int(RECONCILE_OVERLAP.total_seconds() * 1000)
    assert deployment.reconciled_until_ms == sim.now() - overlap and deployment.reconciled_at is not None
    # the next run reads from that point on
    requests = len(sim.requests_to("allOrders"))
    services.deployment_reconcile(deployment=deployment)
    since = [r.params.get("startTime") for r in sim.requests_to("allOrders")[requests:]]
    assert since and all(int(s) >= deployment.reconciled_until_ms for s in since)
    assert Deployment.objects.get(pk=deployment.pk).state == "active"
