"""Data for the trading surfaces' tests (pages, API reads, browser): a paper deployment on a
file-source market, and trades booked through the trading services (order rows as the engine
stores them, fills applied to the position by `position_apply_fill`, snapshots by
`portfolio_snapshot_take`). No exchange is involved: these tests are about what is shown."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import count

import numpy as np
import pytest

from apps.marketdata import services as md
from apps.marketdata.arrays import CandleArrays
from apps.risk.models import RiskProfile
from apps.risk.services import PROFILE_FIELDS
from apps.trading.models import Position

from apps.strategies.services import config_create
from apps.trading import services
from apps.trading.brokers.base import client_order_id
from apps.trading.models import Fill, Order, OrderStatus
from tests.owned_factories import _file_market

T0 = datetime(2023, 11, 14, 22, 0, tzinfo=UTC)
_ids = count(1)
APPROVED = {"outcome": "approved", "amount": "0", "approved": True, "reasons": [], "reason": ""}


def clear_risk_limits():
    """No limit at any scope (the pages then say so). Parity with the replay also holds only while
    no limit binds: the platform's default limits would resize all-in entries."""
    RiskProfile.objects.update(**{f: None for f in PROFILE_FIELDS})


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
        verdict=verdict if verdict is not None else {**APPROVED, "amount": amount})
    if filled:
        fill = Fill.objects.create(order=order, account=deployment.account, exchange_trade_id=f"paper-{order.pk}",
                                   amount=Decimal(amount), price=Decimal(price), fee=Decimal(fee), fee_currency="USD",
                                   time=at, source="order")
        services.position_apply_fill(order=order, fill=fill)
    return order


def engine_tick(deployment, now_ms: int | None = None) -> dict:
    """One tick of the engine loop (trading's own service), on stored candles only."""
    return services.deployment_tick_safely(deployment=deployment, now_ms=now_ms, fetch=False)


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


# --- the real engine on a paper account ------------------------------------------------------------
HOUR = 3_600_000


class EngineRun:
    """A paper deployment on hourly candles around now (a random walk built for the test): the
    bars before now are stored; `step()` stores the next bar and runs the engine tick at its close,
    the way the beat task does on a live clock. The engine decides, checks, fills (next open,
    backtest's rules), books and publishes; the test only advances time."""

    HISTORY, FUTURE = 300, 300

    def __init__(self, owner, *, name="SMA paper", activate=True, seed=3):
        now = int(datetime.now(UTC).timestamp() * 1000)
        self.start = now - now % HOUR - self.HISTORY * HOUR
        n = self.HISTORY + self.FUTURE
        rng = np.random.default_rng(seed)
        close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
        opens = np.r_[close[0], close[:-1]] * (1 + rng.normal(0, 0.002, n))
        self.candles = CandleArrays(self.start + np.arange(n, dtype=np.int64) * HOUR, opens,
                                    np.maximum(opens, close) * 1.002, np.minimum(opens, close) * 0.998, close,
                                    np.ones(n), timeframe="1h")
        exchange = md.exchange_get_or_create(name="Paper files")
        self.market = md.market_get_or_create_for_import(exchange=exchange, symbol=f"PW{next(_ids)}/USDT",
                                                         amount_step="0.001", price_step="0.01")
        self._store(0, self.HISTORY)
        config = config_create(owner=owner, strategy_key="sma_cross", market=self.market, timeframe="1h",
                               parameters={"fast": 5, "slow": 20}, name=f"{name} config",
                               execution={"fee": 0.001, "slippage": 0.0005})
        self.account = services.account_create(owner=owner, name=f"{owner.username} paper {next(_ids)}",
                                               exchange=exchange, mode="paper", paper_balance=Decimal("10000"),
                                               reason="test")
        self.deployment = services.deployment_create(owner=owner, config=config, account=self.account,
                                                     capital=Decimal("5000"), name=name, reason="test")
        self.k = self.HISTORY
        clear_risk_limits()
        if activate:
            self.activate()

    def activate(self):
        self.deployment = services.deployment_activate(deployment=self.deployment, reason="start paper trading")

    def _store(self, lo, hi):
        c = self.candles
        md.candles_ingest(market=self.market, timeframe="1h", source="test", rows=CandleArrays(
            c.time[lo:hi], c.open[lo:hi], c.high[lo:hi], c.low[lo:hi], c.close[lo:hi], c.volume[lo:hi],
            timeframe="1h"))

    def first_tick(self) -> dict:
        return engine_tick(self.deployment, self.start + self.k * HOUR + 5_000)

    def step(self) -> dict:
        self._store(self.k, self.k + 1)
        result = engine_tick(self.deployment, self.start + (self.k + 1) * HOUR + 5_000)
        self.k += 1
        assert not result.get("error"), result
        return result

    def until_open_position(self) -> Position:
        """Step until the engine holds a position (its entry filled)."""
        while True:
            self.step()
            position = Position.objects.filter(deployment=self.deployment, amount__gt=0).first()
            if position is not None:
                return position
            assert self.k < self.HISTORY + self.FUTURE - 5, "no entry in the test's candles"
