"""Property (hypothesis): no sequence of intents, fills, price moves and waits yields an accepted
entry that breaks a limit. Each example draws limits at all four scopes, then plays steps
against the real check on the database (positions, snapshots and orders written as trading
would); after every accepted entry the book is measured independently here, in this file, and
every limit of every scope that applies must hold. Each example runs in a rolled-back
transaction."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, given, settings, target
from hypothesis import strategies as st

from apps.risk import selectors
from apps.risk.check import risk_check
from apps.risk.models import KillSwitch
from apps.trading.models import Order, PortfolioSnapshot, Position

from .conftest import intent, set_limits

pytestmark = pytest.mark.usefixtures("no_limits")
TOL = Decimal("1e-9")


def dec(lo, hi, places):
    return st.decimals(lo, hi, places=places, allow_nan=False, allow_infinity=False)


LIMIT_VALUES = {
    "risk_per_trade_pct": dec("0.1", "5", 2),
    "position_notional_max": dec("100", "6000", 0),
    "open_positions_max": st.integers(0, 2),
    "asset_exposure_pct": dec("5", "100", 0),
    "total_exposure_pct": dec("5", "150", 0),
    "leverage_max": dec("0.1", "1.5", 2),
    "daily_loss_pct": dec("1", "10", 1),
    "drawdown_pct": dec("2", "20", 1),
    "orders_per_minute": st.integers(1, 4),
}
# few limits per scope, so that each one gets to bind often
LIMITS = st.lists(st.sampled_from(sorted(LIMIT_VALUES)), max_size=2, unique=True).flatmap(
    lambda names: st.fixed_dictionaries({n: LIMIT_VALUES[n] for n in names}))
STEP = st.one_of(
    st.tuples(st.just("entry"), st.sampled_from("AB"), dec("0.001", "150", 3), st.one_of(st.none(), dec("0.5", "30", 1))),
    st.tuples(st.just("entry"), st.sampled_from("AB"), dec("0.001", "150", 3), st.one_of(st.none(), dec("0.5", "30", 1))),
    st.tuples(st.just("move"), st.sampled_from("AB"), dec("-0.25", "0.25", 3)),
    st.tuples(st.just("exit"), st.sampled_from("AB"), dec("0.1", "1", 2)),
    st.tuples(st.just("wait"), st.integers(1, 3)),
)


class Book:
    """The test's own model of two deployments' books (independent of apps.risk)."""

    def __init__(self, deps, capital):
        self.deps = deps
        self.cash = {k: capital for k in deps}
        self.amount = {k: Decimal(0) for k in deps}
        self.price = {k: Decimal(100) for k in deps}
        self.peak = {k: capital for k in deps}
        self.day_start = {k: capital for k in deps}
        self.orders = []  # (time, key)

    def equity(self, k):
        return self.cash[k] + self.amount[k] * self.price[k]

    def notional(self, k):
        return self.amount[k] * self.price[k]

    def mark(self, now):
        for k, d in self.deps.items():
            e = self.equity(k)
            self.peak[k] = max(self.peak[k], e)
            Position.objects.filter(deployment=d).update(mark_price=self.price[k])
            PortfolioSnapshot.objects.create(deployment=d, account_id=d.account_id, time=now, equity=e,
                                             cash=self.cash[k], positions_value=self.notional(k))

    def trade(self, k, side, amount, now):
        d = self.deps[k]
        sign = 1 if side == "buy" else -1
        self.cash[k] -= sign * amount * self.price[k]
        self.amount[k] += sign * amount
        Position.objects.update_or_create(deployment=d, symbol=d.config.market.symbol, defaults=dict(
            amount=self.amount[k], side="long" if self.amount[k] > 0 else "flat", entry_price=self.price[k],
            mark_price=self.price[k]))
        o = Order.objects.create(deployment=d, account=d.account, symbol=d.config.market.symbol,
                                 client_order_id=f"p-{d.pk}-{len(self.orders)}-{now.timestamp()}", side=side,
                                 amount=amount, filled=amount, price=self.price[k], status="filled",
                                 signal_bar_time=len(self.orders))
        Order.objects.filter(pk=o.pk).update(created_at=now)
        self.orders.append((now, k))
        self.mark(now)


def check_invariants(book, key, amount, stop, limits, scopes_of, now):
    price = book.price[key]
    applying = scopes_of(key)
    risk_caps = [limits[s]["risk_per_trade_pct"] for s in applying if "risk_per_trade_pct" in limits[s]]
    if risk_caps:
        per_unit = abs(price - stop) if stop is not None else price
        assert amount * per_unit <= min(risk_caps) / 100 * book.equity(key) + TOL
    for s in applying:
        L, members = limits[s], (["A"] if s == "deployment" else ["A", "B"])
        equity = sum(book.equity(m) for m in members)
        total = sum(book.notional(m) for m in members)
        if "position_notional_max" in L:
            assert book.notional(key) <= L["position_notional_max"] + TOL, s
        if "open_positions_max" in L:
            assert sum(1 for m in members if book.amount[m] > 0) <= L["open_positions_max"], s
        if "asset_exposure_pct" in L:
            assert book.notional(key) <= L["asset_exposure_pct"] / 100 * equity + TOL, s
        if "total_exposure_pct" in L:
            assert total <= L["total_exposure_pct"] / 100 * equity + TOL, s
        if "leverage_max" in L:
            assert total <= L["leverage_max"] * equity + TOL, s
        if "orders_per_minute" in L:
            recent = [t for t, k in book.orders if k in members and t >= now - timedelta(seconds=60)]
            assert len(recent) <= L["orders_per_minute"], s


def breached(book, limits, applying):
    for s in applying:
        L, members = limits[s], (["A"] if s == "deployment" else ["A", "B"])
        equity = sum(book.equity(m) for m in members)
        if "daily_loss_pct" in L:
            start = sum(book.day_start[m] for m in members)
            if (start - equity) / start * 100 >= L["daily_loss_pct"]:
                return True
        if "drawdown_pct" in L:
            peak = sum(book.peak[m] for m in members)
            if (peak - equity) / peak * 100 >= L["drawdown_pct"]:
                return True
    return False


@pytest.fixture
def pair(alice, make_deployment):
    a = make_deployment(alice, symbol="BTC/USD", capital="10000")
    return a, make_deployment(alice, symbol="ETH/USD", capital="10000", account=a.account)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(limits=st.fixed_dictionaries({"global": LIMITS, "user": LIMITS, "account": LIMITS, "deployment": LIMITS}),
       steps=st.lists(STEP, min_size=3, max_size=12))
def test_no_accepted_entry_breaks_a_limit(alice, pair, limits, steps):
    selectors._TRADES_CACHE.clear()
    a, b = pair
    with transaction.atomic():
        targets = {"global": None, "user": alice, "account": a.account, "deployment": a}
        for scope, values in limits.items():
            if values:
                set_limits(scope, targets[scope], **values)
        now = timezone.now().replace(hour=1, minute=0, second=0, microsecond=0)
        book = Book({"A": a, "B": b}, Decimal(10000))
        book.mark(now)

        def scopes_of(k):
            return ["global", "user", "account", "deployment"] if k == "A" else ["global", "user", "account"]

        accepted = 0
        for step in steps:
            kind = step[0]
            if kind == "wait":
                now += timedelta(seconds=20 * step[1])
            elif kind == "move":
                _, k, r = step
                book.price[k] = (book.price[k] * (1 + r)).quantize(Decimal("0.01"))
                book.mark(now)
            elif kind == "exit":
                _, k, frac = step
                if book.amount[k] > 0:
                    qty = (book.amount[k] * frac).quantize(Decimal("0.001"))
                    qty = min(max(qty, Decimal("0.001")), book.amount[k])
                    it = intent(book.deps[k], amount=qty, price=book.price[k], reduces=True)
                    v = risk_check(intent=it, context=selectors.risk_context(it, now=now))
                    assert v.outcome == "approved" and v.amount == qty  # exits are never blocked
                    book.trade(k, "sell", qty, now)
            else:
                _, k, qty, stop_pct = step
                price = book.price[k]
                stop = (price * (1 - stop_pct / 100)).quantize(Decimal("0.01")) if stop_pct is not None else None
                was_breached = breached(book, limits, scopes_of(k))
                it = intent(book.deps[k], amount=qty, price=price, stop=stop)
                v = risk_check(intent=it, context=selectors.risk_context(it, now=now))
                if v.approved:
                    assert not was_breached, v.as_dict()
                    switches = KillSwitch.objects.filter(released_at__isnull=True).values_list("target_key", flat=True)
                    assert not set(switches) & {"global", f"user:{alice.pk}", f"account:{a.account_id}",
                                                f"deployment:{book.deps[k].pk}"}
                    assert Decimal(0) < v.amount <= qty
                    book.trade(k, "buy", v.amount, now)
                    check_invariants(book, k, v.amount, stop, limits, scopes_of, now)
                    accepted += 1
        target(float(accepted), label="accepted entries")  # steer towards examples where limits bind
        transaction.set_rollback(True)
