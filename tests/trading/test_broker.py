"""CcxtBroker against the local Binance simulator through the real ccxt client: idempotent client
order ids, precision, minimums, error reasons, partial fills, OCO, and every order fault."""
from __future__ import annotations

from decimal import Decimal

import pytest

from apps.trading.brokers import CcxtBroker
from apps.trading.brokers.base import (BrokerError, OrderRequest, ProtectiveRequest, check_minimums, client_order_id,
                                       round_amount, round_price)

from .conftest import BAR, MIN


@pytest.fixture
def broker(testnet):
    return CcxtBroker(testnet)


def test_client_order_id_is_deterministic_and_within_binance_limits():
    cid = client_order_id(123456, BAR, 2)
    assert cid == client_order_id(123456, BAR, 2)
    assert cid != client_order_id(123456, BAR, 3) and cid != client_order_id(123456, BAR + 3_600_000, 2)
    assert cid.startswith("tp-123456-") and len(cid) <= 36
    with pytest.raises(ValueError, match="36"):
        client_order_id(10 ** 30, BAR, 0)


def test_amounts_round_down_and_prices_to_the_nearest_tick():
    assert round_amount(Decimal("0.123456789"), Decimal("0.00001")) == Decimal("0.12345")
    assert round_amount(Decimal("0.99999"), Decimal("0.001")) == Decimal("0.999")
    assert round_price(Decimal("37123.456"), Decimal("0.01")) == Decimal("37123.46")
    assert round_price(Decimal("37123.454"), Decimal("0.01")) == Decimal("37123.45")


def test_market_buy_fills_with_fee_and_trade_from_the_exchange(broker, sim):
    cid = client_order_id(1, BAR, 0)
    report = broker.place_order(OrderRequest(client_order_id=cid, symbol="BTC/USDT", side="buy",
                                             amount=Decimal("0.0123456")))
    assert report.status == "filled" and report.client_order_id == cid
    assert report.amount == Decimal("0.01234") == report.filled  # rounded down to the lot step
    assert report.trades and report.trades[0].fee == Decimal("0.00001234") and report.trades[0].fee_currency == "BTC"
    assert sim.orders()[0]["clientOrderId"] == cid


def test_below_minimum_notional_is_refused_before_anything_is_sent(btc):
    with pytest.raises(BrokerError) as exc:
        check_minimums(btc, Decimal("0.0001"), Decimal("30000"))  # 3 USDT < 5 USDT
    assert exc.value.code == "below_minimum"
    assert "minimum notional 5 USDT" in exc.value.message
    with pytest.raises(BrokerError, match="rounds to 0"):
        check_minimums(btc, Decimal(0), Decimal("30000"))


def test_retry_of_the_same_intent_finds_the_existing_order(broker, sim):
    request = OrderRequest(client_order_id=client_order_id(1, BAR, 0), symbol="BTC/USDT", side="buy",
                           amount=Decimal("0.01"))
    first = broker.place_order(request)
    again = broker.place_order(request)  # the exchange says "Duplicate order sent."; we look it up
    assert again.exchange_order_id == first.exchange_order_id
    assert len(sim.orders()) == 1


def test_timeout_after_the_order_was_accepted_gives_exactly_one_order(broker, sim):
    sim.set_faults(timeout_after_accept_next=1)
    request = OrderRequest(client_order_id=client_order_id(1, BAR, 0), symbol="BTC/USDT", side="buy",
                           amount=Decimal("0.01"))
    report = broker.place_order(request)
    assert report.status == "filled" and report.exchange_order_id
    assert sim.fault_counts["timeout_after_accept"] == 1
    assert len(sim.orders()) == 1


@pytest.mark.parametrize("switch,code,text", [
    ("insufficient_balance_next", "insufficient_balance", "insufficient balance"),
    ("reject_next", "invalid_order", "refused the order"),
])
def test_order_faults_become_clear_reasons(broker, sim, switch, code, text):
    sim.set_faults(**{switch: 1})
    with pytest.raises(BrokerError) as exc:
        broker.place_order(OrderRequest(client_order_id="tp-1-x-0", symbol="BTC/USDT", side="buy",
                                        amount=Decimal("0.01")))
    assert exc.value.code == code and text in exc.value.message.lower()
    assert not exc.value.retryable
    assert sim.orders() == []


def test_real_insufficient_balance_and_unknown_symbol(broker, sim):
    with pytest.raises(BrokerError) as exc:
        broker.place_order(OrderRequest(client_order_id="tp-1-y-0", symbol="BTC/USDT", side="buy", amount=Decimal("50")))
    assert exc.value.code == "insufficient_balance"
    with pytest.raises(BrokerError) as exc:
        broker.place_order(OrderRequest(client_order_id="tp-1-y-1", symbol="NOPE/USDT", side="buy", amount=Decimal(1)))
    assert exc.value.code == "unknown_symbol"


def test_auth_failure_is_classified_and_never_shows_the_secret(testnet, sim):
    sim.set_faults(auth_fail=True)
    with pytest.raises(BrokerError) as exc:
        CcxtBroker(testnet).balance()
    assert exc.value.code == "auth_failed" and not exc.value.retryable
    assert "sim-api-secret" not in exc.value.message and "sim-api-key" not in exc.value.message
    assert sim.fault_counts["auth_fail"] == 1  # not retried


def test_partial_fill_of_a_resting_limit_then_the_rest(broker, sim):
    sim.set_faults(partial_fill_ratio=0.4)
    last = Decimal(sim.candles("BTC/USDT", "1m", limit=1)[-1][4])
    cid = client_order_id(1, BAR, 0)
    placed = broker.place_order(OrderRequest(client_order_id=cid, symbol="BTC/USDT", side="buy",
                                             amount=Decimal("0.01"), type="limit", price=last * Decimal("0.999")))
    assert placed.status == "open"
    sim.fill_order(client_order_id=cid)  # "a fill while our worker is down"
    report = broker.fetch_order(symbol="BTC/USDT", client_order_id=cid)
    assert report.status == "partially_filled" and report.filled == Decimal("0.004")
    assert [t.amount for t in report.trades] == [Decimal("0.004")]
    sim.fill_order(client_order_id=cid)
    report = broker.fetch_order(symbol="BTC/USDT", client_order_id=cid)
    assert report.status == "filled" and sum(t.amount for t in report.trades) == Decimal("0.01")
    assert sim.fault_counts["partial_fill"] == 1


def test_market_order_partial_fill_expires_the_rest(broker, sim):
    sim.set_faults(partial_fill_ratio=0.5)
    report = broker.place_order(OrderRequest(client_order_id="tp-1-p-0", symbol="BTC/USDT", side="buy",
                                             amount=Decimal("0.01")))
    assert report.status == "expired" and report.filled == Decimal("0.005")


def test_protective_oco_rests_on_the_exchange_and_the_stop_wins_a_bar_touching_both(broker, sim):
    broker.place_order(OrderRequest(client_order_id="tp-1-e-0", symbol="BTC/USDT", side="buy", amount=Decimal("0.01")))
    held = sim.balances()["BTC"]["free"]
    last = Decimal(sim.candles("BTC/USDT", "1m", limit=1)[-1][4])
    report = broker.place_protective(ProtectiveRequest(
        client_order_id="tp-1-e-1", symbol="BTC/USDT", side="sell", amount=held,
        stop_price=last * Decimal("0.999"), take_profit_price=last * Decimal("1.001")))
    assert report.type == "oco" and report.status == "open" and len(report.leg_ids) == 2
    assert sim.balances()["BTC"]["locked"] == round_amount(held, Decimal("0.00001"))
    legs = {o["clientOrderId"]: o for o in sim.orders() if o["orderListId"] != -1}
    assert set(legs) == {"tp-1-e-1t", "tp-1-e-1s"}
    assert {o["type"] for o in legs.values()} == {"LIMIT_MAKER", "STOP_LOSS"}
    # let the market move until one leg trades: the other expires
    for _ in range(240):
        sim.advance(MIN)
        states = {o["clientOrderId"]: o["status"] for o in sim.orders() if o["orderListId"] != -1}
        if "FILLED" in states.values():
            break
    assert sorted(states.values()) == ["EXPIRED", "FILLED"]
    assert sim.balances()["BTC"]["locked"] == 0


def test_key_permissions_come_from_api_restrictions(testnet, sim):
    testnet.mode = "live"  # apiRestrictions is a live-only (sapi) endpoint
    sim.api_permissions["enableWithdrawals"] = True
    perms = CcxtBroker(testnet).key_permissions()
    assert perms == {"read": True, "trade": True, "withdraw": True, "source": "apiRestrictions"}
