"""The simulator's order lists and stop orders, through the real ccxt client."""
from __future__ import annotations

from decimal import Decimal

import ccxt
import pytest

from tests.exchange_sim import running_simulator

NOW = 1_700_000_000_000


@pytest.fixture
def sim():
    with running_simulator(now=NOW, balances={"USDT": "100000", "BTC": "1"}) as s:
        yield s


def test_a_resting_stop_loss_triggers_when_a_candle_crosses_it(sim):
    ex = sim.ccxt_client()
    last = Decimal(sim.candles("BTC/USDT", "1m", limit=1)[-1][4])
    stop = (last * Decimal("0.998")).quantize(Decimal("0.01"))
    order = ex.create_order("BTC/USDT", "market", "sell", 0.1, None, {"stopLossPrice": str(stop),
                                                                       "clientOrderId": "stop-1"})
    raw = sim.orders()[0]
    assert raw["type"] == "STOP_LOSS" and raw["status"] == "NEW" and Decimal(raw["stopPrice"]) == stop
    assert sim.balances()["BTC"]["locked"] == Decimal("0.1")
    for _ in range(600):
        sim.advance(60_000)
        if sim.orders()[0]["status"] == "FILLED":
            break
    fetched = ex.fetch_order(order["id"], "BTC/USDT")
    assert fetched["status"] == "closed" and fetched["filled"] == 0.1
    trade = ex.fetch_my_trades("BTC/USDT")[-1]
    assert Decimal(str(trade["price"])) <= stop  # the level, or a worse open after a gap


def test_cancelling_one_oco_leg_cancels_the_list_and_unlocks(sim):
    ex = sim.ccxt_client()
    last = Decimal(sim.candles("BTC/USDT", "1m", limit=1)[-1][4])
    ex.privatePostOrderListOco({"symbol": "BTCUSDT", "side": "SELL", "quantity": "0.5",
                                "aboveType": "LIMIT_MAKER", "abovePrice": str((last * Decimal("1.05")).quantize(Decimal("0.01"))),
                                "belowType": "STOP_LOSS", "belowStopPrice": str((last * Decimal("0.95")).quantize(Decimal("0.01"))),
                                "listClientOrderId": "list-1"})
    assert sim.balances()["BTC"]["locked"] == Decimal("0.5")
    legs = [o for o in sim.orders() if o["orderListId"] != -1]
    ex.cancel_order(str(legs[0]["orderId"]), "BTC/USDT")
    assert {o["status"] for o in sim.orders()} == {"CANCELED"}
    assert sim.balances()["BTC"] == {"free": Decimal("1"), "locked": Decimal("0")}
    assert ex.privateGetOrderList({"origClientOrderId": "list-1"})["listOrderStatus"] == "ALL_DONE"


def test_oco_with_prices_on_the_wrong_side_is_refused(sim):
    ex = sim.ccxt_client()
    last = Decimal(sim.candles("BTC/USDT", "1m", limit=1)[-1][4])
    with pytest.raises(ccxt.BadRequest, match="relationship of the prices"):
        ex.privatePostOrderListOco({"symbol": "BTCUSDT", "side": "SELL", "quantity": "0.5",
                                    "aboveType": "LIMIT_MAKER", "abovePrice": str((last * Decimal("0.9")).quantize(Decimal("0.01"))),
                                    "belowType": "STOP_LOSS", "belowStopPrice": str((last * Decimal("0.8")).quantize(Decimal("0.01")))})
    assert sim.orders() == []


def test_api_restrictions_and_account_flags_follow_the_switch(sim):
    ex = sim.ccxt_client()
    assert ex.sapiGetAccountApiRestrictions()["enableWithdrawals"] is False
    sim.api_permissions["enableWithdrawals"] = True
    assert ex.sapiGetAccountApiRestrictions()["enableWithdrawals"] is True
    assert ex.fetch_balance()["info"]["canWithdraw"] is True
