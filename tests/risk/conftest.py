"""Risk fixtures: paper deployments on file-source markets (no exchange needed), and helpers that
write the books the check reads (positions, snapshots, orders, fills) as trading would."""
from __future__ import annotations

import itertools
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from apps.marketdata import services as md
from apps.risk import services as risk
from apps.risk.check import OrderIntent
from apps.risk.models import RiskProfile
from apps.strategies.services import config_create
from apps.trading import services as trading
from apps.trading.models import Fill, Order, PortfolioSnapshot, Position

_ids = itertools.count(1)


@pytest.fixture
def exchange(db):
    return md.exchange_get_or_create(name="Test files")


def market(exchange, symbol: str, step: str = "0.001"):
    return md.market_get_or_create_for_import(exchange=exchange, symbol=symbol, amount_step=step)


@pytest.fixture
def make_deployment(exchange):
    """make_deployment(owner, symbol="BTC/USD", capital=10000, account=None, timeframe="1h") -> active paper
    deployment."""

    def make(owner, symbol="BTC/USD", capital="10000", account=None, timeframe="1h"):
        m = market(exchange, symbol)
        config = config_create(owner=owner, strategy_key="sma_cross", market=m, timeframe=timeframe,
                               parameters={"fast": 5, "slow": 20}, name=f"{owner.username} {symbol} {next(_ids)}")
        if account is None:
            account = trading.account_create(owner=owner, name=f"{owner.username} paper {next(_ids)}",
                                             exchange=exchange, mode="paper", paper_balance=Decimal("1000000"),
                                             paper_currency="USD", reason="test")
        d = trading.deployment_create(owner=owner, config=config, account=account, capital=Decimal(capital),
                                      reason="test")
        return trading.deployment_activate(deployment=d, reason="test")

    return make


@pytest.fixture
def dep(alice, make_deployment):
    return make_deployment(alice)


@pytest.fixture
def no_limits(db):
    """Clear the global defaults so one test can set exactly the limit it is about."""
    fields = [f for f in risk.PROFILE_FIELDS]
    RiskProfile.objects.filter(target_key="global").update(**{f: None for f in fields})


def set_limits(scope="global", target=None, reason="test", **limits):
    return risk.profile_update(scope=scope, target=target, changes=limits, reason=reason)


def hold(deployment, symbol=None, amount="1", price="100"):
    """A long position as fills would leave it."""
    symbol = symbol or deployment.config.market.symbol
    return Position.objects.update_or_create(deployment=deployment, symbol=symbol, defaults=dict(
        side="long", amount=Decimal(amount), entry_price=Decimal(price), mark_price=Decimal(price)))[0]


def snapshot(deployment, equity, at=None):
    return PortfolioSnapshot.objects.create(deployment=deployment, account_id=deployment.account_id,
                                            time=at or timezone.now(), equity=Decimal(equity), cash=Decimal(equity),
                                            positions_value=Decimal(0))


def order(deployment, side="buy", amount="1", price="100", status="filled", parent=None, at=None):
    o = Order.objects.create(deployment=deployment, account=deployment.account, symbol=deployment.config.market.symbol,
                             client_order_id=f"t-{next(_ids)}", side=side, amount=Decimal(amount),
                             price=Decimal(price), status=status, signal_bar_time=next(_ids), parent=parent,
                             filled=Decimal(amount) if status == "filled" else Decimal(0))
    if at is not None:
        Order.objects.filter(pk=o.pk).update(created_at=at, updated_at=at)
        o.refresh_from_db()
    return o


def round_trip(deployment, buy="100", sell="90", amount="1", at=None):
    """One closed trade: a filled buy then a filled sell (fills stored), ending at `at`."""
    at = at or timezone.now()
    for side, price, t in (("buy", buy, at - timedelta(minutes=1)), ("sell", sell, at)):
        o = order(deployment, side=side, amount=amount, price=price, at=t)
        Fill.objects.create(order=o, account_id=deployment.account_id, exchange_trade_id=f"f-{next(_ids)}",
                            amount=Decimal(amount), price=Decimal(price), time=t)


def intent(deployment, amount="1", price="100", stop=None, reduces=False, symbol=None, source="engine"):
    return OrderIntent(deployment_id=deployment.pk, account_id=deployment.account_id, owner_id=deployment.owner_id,
                       symbol=symbol or deployment.config.market.symbol, side="sell" if reduces else "buy",
                       amount=Decimal(amount), price=Decimal(price),
                       stop_price=Decimal(stop) if stop is not None else None, reduces_position=reduces,
                       source=source)
