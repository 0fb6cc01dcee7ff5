"""order_place: one intent is one order, whatever crashes or timeouts happen; refusals are stored
with a clear reason; fills make positions. Reconciliation repairs what the exchange proves and
pauses on what nobody can explain."""
from __future__ import annotations

from decimal import Decimal

import pytest

from apps.trading import services
from apps.trading.brokers import CcxtBroker
from apps.trading.brokers.base import OrderRequest, client_order_id
from apps.trading.models import DeploymentState, Fill, Order, OrderStatus, Position
from apps.trading.services import orders as order_services

from .conftest import BAR


def _place(deployment, **kw):
    args = dict(deployment=deployment, side="buy", amount=Decimal("0.0123456"), signal_bar_time=BAR,
                reference_price=Decimal("37000"), decision={"signal": "entry_long", "close": "37000"},
                verdict={"approved": True, "reason": "no risk limits yet"})
    args.update(kw)
    return services.order_place(**args)


def test_a_market_order_is_stored_with_its_fill_and_the_position(deployment, sim, published,
                                                                django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        order = _place(deployment)
    assert order.status == OrderStatus.FILLED and order.exchange_order_id
    assert order.amount == Decimal("0.01234") and order.filled == Decimal("0.01234")
    assert order.decision["signal"] == "entry_long" and order.verdict["approved"] is True
    fill = Fill.objects.get(order=order)
    assert fill.fee == Decimal("0.00001234") and fill.fee_currency == "BTC" and fill.source == "order"
    position = Position.objects.get(deployment=deployment)
    assert position.side == "long" and position.amount == Decimal("0.01234") - Decimal("0.00001234")
    assert position.entry_price == pytest.approx(fill.amount * fill.price / position.amount, abs=Decimal("1e-9"))
    types = [m["type"] for _, m in published]
    assert "trading.order.updated" in types and "trading.position.updated" in types


def test_the_same_intent_twice_is_one_order(deployment, sim):
    first = _place(deployment)
    again = _place(deployment)
    assert again.pk == first.pk and Order.objects.count() == 1 and len(sim.orders()) == 1


def test_worker_killed_between_order_accepted_and_order_stored_gives_exactly_one_order(deployment, sim, monkeypatch):
    """The exchange accepts the order, then the worker dies before booking the answer. After a
    restart the same intent is placed again: the broker finds the accepted order by its client
    order id; nothing is sent twice."""
    def crash(**kwargs):
        raise SystemExit("worker killed")

    monkeypatch.setattr(order_services, "order_apply_report", crash)
    with pytest.raises(SystemExit):
        _place(deployment)
    assert len(sim.orders()) == 1  # accepted by the exchange
    stored = Order.objects.get()
    assert stored.status == OrderStatus.SUBMITTED and not stored.exchange_order_id  # not booked
    monkeypatch.undo()

    order = _place(deployment)  # the restarted worker
    assert len(sim.orders()) == 1 and Order.objects.count() == 1
    assert order.status == OrderStatus.FILLED and order.exchange_order_id == str(sim.orders()[0]["orderId"])
    assert Fill.objects.filter(order=order).count() == 1


def test_timeout_after_accept_then_restart_books_the_one_order(deployment, sim):
    sim.set_faults(timeout_after_accept_next=1)
    order = _place(deployment)
    assert order.status == OrderStatus.FILLED and len(sim.orders()) == 1


def test_network_failure_leaves_the_outcome_unknown_and_a_retry_settles_it(deployment, sim):
    sim.set_faults(timeout_next=3, timeout_mode="drop", endpoints=("order",))  # placement and lookups drop
    order = _place(deployment)
    assert order.status == OrderStatus.SUBMITTED and order.reason_code == "network"
    assert "Outcome unknown" in order.reason
    sim.set_faults(timeout_next=0)
    order = _place(deployment)
    assert order.status == OrderStatus.FILLED and len(sim.orders()) == 1 and order.reason == ""


@pytest.mark.parametrize("switch,code", [("insufficient_balance_next", "insufficient_balance"),
                                         ("reject_next", "invalid_order")])
def test_exchange_refusals_are_stored_with_a_clear_reason(deployment, sim, switch, code):
    sim.set_faults(**{switch: 1})
    order = _place(deployment)
    assert order.status == OrderStatus.REJECTED and order.reason_code == code and order.reason
    assert _place(deployment).status == OrderStatus.REJECTED  # a rejected intent is not re-sent
    assert sim.orders() == []


def test_below_minimum_notional_is_stored_and_never_sent(deployment, sim):
    sim.clear_requests()
    order = _place(deployment, amount=Decimal("0.0001"))
    assert order.status == OrderStatus.FAILED and order.reason_code == "below_minimum"
    assert "minimum notional 5 USDT" in order.reason
    assert sim.requests_to("/api/v3/order") == []


def test_a_denied_pre_trade_verdict_is_stored_and_never_sent(deployment, sim):
    order = _place(deployment, verdict={"approved": False, "reason": "daily loss limit reached"})
    assert order.status == OrderStatus.FAILED and "daily loss limit reached" in order.reason
    assert sim.orders() == []


def test_auth_failure_on_placement_pauses_the_deployment(deployment, sim):
    sim.set_faults(auth_fail=True)
    order = _place(deployment)
    assert order.status == OrderStatus.REJECTED and order.reason_code == "auth_failed"
    deployment.refresh_from_db()
    assert deployment.state == DeploymentState.PAUSED


def test_buy_then_sell_realises_pnl_net_of_fees(deployment, sim):
    buy = _place(deployment)
    held = Position.objects.get(deployment=deployment).amount
    sim.advance(3_600_000)
    sell = _place(deployment, side="sell", amount=held, intent_index=1)
    assert sell.status == OrderStatus.FILLED
    position = Position.objects.get(deployment=deployment)
    sold = sell.filled
    expected = sold * sell.average - sell.fee - sold * (buy.filled * buy.average / held)
    assert position.realised_pnl == pytest.approx(expected, abs=Decimal("0.0001"))
    assert position.amount == held - sold


# --- reconciliation ------------------------------------------------------------------------------
def test_reconciliation_repairs_a_fill_missed_while_the_worker_was_down(deployment, sim):
    last = Decimal(sim.candles("BTC/USDT", "1m", limit=1)[-1][4])
    order = _place(deployment, type="limit", price=last * Decimal("0.99"), amount=Decimal("0.01"))
    assert order.status == OrderStatus.OPEN
    sim.fill_order(client_order_id=order.client_order_id)  # while we are not looking
    result = services.deployment_reconcile(deployment=deployment)
    order.refresh_from_db()
    assert order.status == OrderStatus.FILLED and Fill.objects.get(order=order).source == "reconciliation"
    assert Position.objects.get(deployment=deployment).amount == Decimal("0.01") - Decimal("0.00001")
    assert any("missed" in line for line in result["repaired"]) and result["flagged"] == []
    deployment.refresh_from_db()
    assert deployment.state == DeploymentState.ACTIVE


def test_reconciliation_recovers_an_order_accepted_but_never_stored(deployment, sim):
    cid = client_order_id(deployment.pk, BAR, 4)
    CcxtBroker(deployment.account).place_order(OrderRequest(client_order_id=cid, symbol="BTC/USDT", side="buy",
                                                            amount=Decimal("0.01")))
    result = services.deployment_reconcile(deployment=deployment)
    order = Order.objects.get(client_order_id=cid)
    assert order.status == OrderStatus.FILLED and order.signal_bar_time == BAR - BAR % 1000 and order.intent_index == 4
    assert order.fills.count() == 1 and result["flagged"] == []
    assert any("not stored: recovered" in line for line in result["repaired"])


def test_reconciliation_pauses_on_an_unexplained_balance(deployment, sim):
    _place(deployment)
    assert services.deployment_reconcile(deployment=deployment)["flagged"] == []
    btc = sim.balances()["BTC"]["free"]
    sim.set_balance("BTC", btc + Decimal("0.5"))  # a trade made elsewhere, a deposit: not in our books
    result = services.deployment_reconcile(deployment=deployment)
    assert result["paused"] is True
    assert "Unexplained BTC balance" in result["flagged"][0] and "difference 0.5 BTC" in result["flagged"][0]
    deployment.refresh_from_db()
    assert deployment.state == DeploymentState.PAUSED and "Unexplained BTC balance" in deployment.state_reason


def test_reconciliation_marks_an_order_that_never_arrived_as_failed(deployment, sim, monkeypatch):
    monkeypatch.setattr(CcxtBroker, "place_order", lambda self, request: (_ for _ in ()).throw(SystemExit("died")))
    with pytest.raises(SystemExit):
        _place(deployment)
    monkeypatch.undo()
    Order.objects.update(updated_at="2020-01-01T00:00:00Z")
    result = services.deployment_reconcile(deployment=deployment)
    order = Order.objects.get()
    assert order.status == OrderStatus.FAILED and order.reason_code == "never_arrived"
    assert result["flagged"] == [] and sim.orders() == []


def test_protective_oco_exit_is_booked_by_reconciliation_and_the_books_match(deployment, sim):
    entry = _place(deployment, amount=Decimal("0.01"))
    last = Decimal(sim.candles("BTC/USDT", "1m", limit=1)[-1][4])
    protect = services.order_protect(entry=entry, stop_price=last * Decimal("0.998"),
                                     take_profit_price=last * Decimal("1.002"))
    assert protect.type == "oco" and protect.status == OrderStatus.OPEN and protect.parent == entry
    assert protect.amount == Decimal("0.00999")  # what the entry left after its base-currency fee
    for _ in range(600):  # the market moves while the worker is down
        sim.advance(60_000)
        if any(o["status"] == "FILLED" for o in sim.orders() if o["orderListId"] != -1):
            break
    result = services.deployment_reconcile(deployment=deployment)
    assert result["flagged"] == [] and result["paused"] is False
    protect.refresh_from_db()
    assert protect.status == OrderStatus.FILLED
    legs = {leg.client_order_id[-1]: leg for leg in protect.protective.all()}
    assert set(legs) == {"t", "s"} and sorted(leg.status for leg in legs.values()) == ["expired", "filled"]
    position = Position.objects.get(deployment=deployment)
    assert position.amount == Decimal("0.00999") - Decimal("0.00999") and position.side == "flat"
    assert position.realised_pnl != 0
    assert services.deployment_reconcile(deployment=deployment)["repaired"] == []  # nothing left to repair
