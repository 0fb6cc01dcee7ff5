"""Data for the trading surfaces' tests (pages, API reads, browser): a paper deployment on a
file-source market, and trades booked through the trading services (order rows as the engine
stores them, fills applied to the position by `position_apply_fill`, snapshots by
`portfolio_snapshot_take`). No exchange is involved: these tests are about what is shown."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import count

import pytest

from apps.strategies.services import config_create
from apps.trading import services
from apps.trading.brokers.base import client_order_id
from apps.trading.models import Fill, Order, OrderStatus
from tests.owned_factories import _file_market

T0 = datetime(2023, 11, 14, 22, 0, tzinfo=UTC)
_ids = count(1)
NO_LIMITS = {"outcome": "approved", "amount": "0", "approved": True,
             "reasons": [{"limit": None, "value": None, "scope": None,
                          "message": "No risk limits are configured yet: approved without a check."}]}


def make_deployment(owner, *, name="SMA on SYN", capital="1000", activate=True, symbol="SYN/USD"):
    market = _file_market(symbol)
    config = config_create(owner=owner, strategy_key="sma_cross", market=market, timeframe="1m",
                           parameters={"fast": 10, "slow": 30}, name=f"{name} config")
    account = services.account_create(owner=owner, name=f"{owner.username} paper {next(_ids)}",
                                      exchange=market.exchange, mode="paper", paper_balance=Decimal("100000"),
                                      paper_currency="USD", reason="test")
    deployment = services.deployment_create(owner=owner, config=config, account=account, capital=Decimal(capital),
                                            name=name, reason="test")
    if activate:
        deployment = services.deployment_activate(deployment=deployment, reason="start paper trading")
    return deployment


def book_trade(deployment, *, side: str, amount: str, price: str, fee: str = "0", at: datetime | None = None,
               bar_ms: int | None = None, decision: dict | None = None, verdict: dict | None = None,
               status: str = OrderStatus.FILLED) -> Order:
    """One order as the engine stores it, filled at `price` (fee in the quote currency)."""
    at = at or T0
    bar_ms = bar_ms if bar_ms is not None else int(at.timestamp() * 1000) - 60_000
    intent = next(_ids)
    filled = status == OrderStatus.FILLED
    order = Order.objects.create(
        deployment=deployment, account=deployment.account, symbol=deployment.config.market.symbol,
        client_order_id=client_order_id(deployment.pk, bar_ms, intent), side=side, amount=Decimal(amount),
        status=status, filled=Decimal(amount) if filled else Decimal(0), average=Decimal(price) if filled else None,
        fee=Decimal(fee), fee_currency="USD", signal_bar_time=bar_ms, intent_index=intent,
        decision=decision if decision is not None else {"signal": "entry_long" if side == "buy" else "exit_long",
                                                        "close": price, "fast_sma": "101.2", "slow_sma": "100.7"},
        verdict=verdict if verdict is not None else {**NO_LIMITS, "amount": amount})
    if filled:
        fill = Fill.objects.create(order=order, account=deployment.account, exchange_trade_id=f"paper-{order.pk}",
                                   amount=Decimal(amount), price=Decimal(price), fee=Decimal(fee), fee_currency="USD",
                                   time=at, source="order")
        services.position_apply_fill(order=order, fill=fill)
    return order


def snapshot(deployment, *, price: str, at: datetime):
    return services.portfolio_snapshot_take(deployment=deployment, prices={deployment.config.market.symbol:
                                                                           Decimal(price)}, time=at)


@pytest.fixture
def traded(alice):
    """Alice's active paper deployment (capital 1000 USD): a winning round trip (+19.58 net of
    fees), a losing one (-5.20), an open long of 3 from 101.10 (fees included) marked at 104
    (+8.70), and a snapshot after each."""
    d = make_deployment(alice)
    m = lambda minutes: T0 + timedelta(minutes=minutes)  # noqa: E731
    book_trade(d, side="buy", amount="2", price="100", fee="0.2", at=m(0))
    book_trade(d, side="sell", amount="2", price="110", fee="0.22", at=m(5))
    snapshot(d, price="110", at=m(6))     # equity 1019.58 (flat)
    book_trade(d, side="buy", amount="1", price="105", fee="0.1", at=m(10))
    book_trade(d, side="sell", amount="1", price="100", fee="0.1", at=m(15))
    snapshot(d, price="100", at=m(16))    # 1014.38 (flat)
    book_trade(d, side="buy", amount="3", price="101", fee="0.3", at=m(20))
    snapshot(d, price="104", at=m(21))    # cash 711.08 + 3 x 104 = 1023.08
    d.refresh_from_db()
    return d
