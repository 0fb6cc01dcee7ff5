"""Reads of risk: the check's context (limits, overrides, kill switches and current usage at each
scope), the adaptive throttle, loss streaks, correlations, and the usage summary the page, API
and command show.

`risk_context` reads in a fixed handful of queries whatever the number of positions: the
deployments in the widest scope with their equity (latest snapshot), peak and day-start equity;
open positions; recent and open orders; profiles, overrides and kill switches of the four
targets; the deployment's closing fills for its loss streak (cached by last fill id).
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

import numpy as np
from django.db import connection
from django.db.models import Max, Q
from django.utils import timezone

from quant.timeframes import floor_time

from apps.marketdata.selectors import latest_candles
from apps.trading.models import OPEN_STATUSES, Deployment, DeploymentState, Fill, Order, PortfolioSnapshot, Position

from .models import KillSwitch, RiskOverride, RiskProfile, Scope, SizingAdjustment, target_key
from .rules import HUNDRED, LIMITS, OrderIntent, RiskContext, ScopeState, base_of, effective_risk_pct

PARAMS = ("cooldown_minutes", "correlation_bars", "adaptive_enabled", "adaptive_floor_pct", "adaptive_start_pct",
          "override_hours", "auto_trip_flatten")


@dataclass(frozen=True)
class Targets:
    """The four scope targets of one deployment (or fewer, for an intent without one)."""

    user_id: int | None = None
    account_id: int | None = None
    deployment_id: int | None = None

    def keys(self) -> list[tuple[str, str]]:
        out = [(Scope.GLOBAL, "global")]
        for scope, value in ((Scope.USER, self.user_id), (Scope.ACCOUNT, self.account_id),
                             (Scope.DEPLOYMENT, self.deployment_id)):
            if value is not None:
                out.append((scope, target_key(scope, value)))
        return out


def _day_start(now: datetime) -> datetime:
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


def deployment_books(*, now: datetime, deployment_ids=None) -> dict[int, dict]:
    """Per deployment (not stopped, or named): owner, account, capital, equity (latest snapshot,
    else capital), peak equity and the equity at the UTC day's start. One query, written in SQL
    because the ORM spends longer compiling its four correlated subqueries than the database
    spends running them (this sits on the signal-to-order path); portable to SQLite."""
    day = _day_start(now)
    d, s = Deployment._meta.db_table, PortfolioSnapshot._meta.db_table
    if deployment_ids is not None:
        ids = [int(i) for i in deployment_ids] or [0]
        where, params = f"d.id IN ({', '.join(['%s'] * len(ids))})", ids
    else:
        where, params = "d.state <> %s", [DeploymentState.STOPPED]
    sql = f"""
        SELECT d.id, d.owner_id, d.account_id, d.capital,
          (SELECT s.equity FROM {s} s WHERE s.deployment_id = d.id ORDER BY s.time DESC, s.id DESC LIMIT 1),
          (SELECT MAX(s.equity) FROM {s} s WHERE s.deployment_id = d.id),
          (SELECT s.equity FROM {s} s WHERE s.deployment_id = d.id AND s.time < %s ORDER BY s.time DESC, s.id DESC LIMIT 1),
          (SELECT s.equity FROM {s} s WHERE s.deployment_id = d.id AND s.time >= %s ORDER BY s.time, s.id LIMIT 1)
        FROM {d} d WHERE {where}"""
    money = PortfolioSnapshot._meta.get_field("equity")
    with connection.cursor() as cursor:
        at = connection.ops.adapt_datetimefield_value(day)  # the backend's own form (SQLite stores text)
        cursor.execute(sql, [at, at, *params])
        rows = cursor.fetchall()
    out = {}
    for pk, owner_id, account_id, capital, last, peak, before_day, first_today in rows:
        capital, last, peak, before_day, first_today = (
            None if v is None else money.to_python(v) for v in (capital, last, peak, before_day, first_today))
        equity = last if last is not None else capital
        day_start = before_day if before_day is not None else (first_today if first_today is not None else capital)
        peak = max(x for x in (peak, capital, equity) if x is not None)
        out[pk] = {"owner_id": owner_id, "account_id": account_id, "capital": capital, "equity": equity,
                   "peak": peak, "day_start": day_start}
    return out


def _in_scope(scope: str, key: str, book: dict, deployment_id: int) -> bool:
    if scope == Scope.GLOBAL:
        return True
    if scope == Scope.USER:
        return key == f"user:{book['owner_id']}"
    if scope == Scope.ACCOUNT:
        return key == f"account:{book['account_id']}"
    return key == f"deployment:{deployment_id}"


def scope_rows(keys: list[str], now: datetime):
    """Profiles, active overrides and active kill switches of these targets (three queries)."""
    profiles = {p.target_key: p for p in RiskProfile.objects.filter(target_key__in=keys)
                .select_related("user", "account", "deployment")}
    overrides: dict[str, list] = {}
    for o in RiskOverride.objects.filter(target_key__in=keys, revoked_at__isnull=True, expires_at__gt=now):
        overrides.setdefault(o.target_key, []).append(o)
    switches = {k.target_key: k for k in KillSwitch.objects.filter(target_key__in=keys, released_at__isnull=True)}
    return profiles, overrides, switches


def _label(scope: str, key: str, profile: RiskProfile | None, names: dict) -> str:
    if scope == Scope.GLOBAL:
        return "Global"
    if profile is not None:
        return profile.scope_label
    return f"{Scope(scope).label} {names.get(key, key.split(':')[1])}"


def risk_context(intent: OrderIntent, *, now: datetime | None = None) -> RiskContext:
    """Everything the check needs about the scopes of `intent`, from the database."""
    now = now or timezone.now()
    deployment = None
    if intent.deployment_id is not None:
        deployment = (Deployment.objects.select_related("config__market", "account", "owner")
                      .filter(pk=intent.deployment_id).first())
    targets = Targets(user_id=deployment.owner_id if deployment else intent.owner_id,
                      account_id=deployment.account_id if deployment else intent.account_id,
                      deployment_id=deployment.pk if deployment else None)
    names = {}
    if deployment:
        names = {f"user:{deployment.owner_id}": deployment.owner.get_username(),
                 f"account:{deployment.account_id}": deployment.account.name,
                 f"deployment:{deployment.pk}": str(deployment)}
    keys = targets.keys()
    scopes = build_scopes(keys, now=now, names=names, extra_deployments=[targets.deployment_id])
    ctx = RiskContext(now=now, scopes=scopes,
                      amount_step=deployment.config.market.amount_step if deployment else None)
    own = scopes[-1] if deployment else None
    if own is not None:
        ctx.deployment_equity = own.equity
        ctx.deployment_drawdown_pct = ((own.peak_equity - own.equity) / own.peak_equity * HUNDRED
                                       if own.peak_equity > 0 else Decimal(0))
        if any(s.limits.get("loss_streak_max") is not None for s in scopes):
            ctx.loss_streak, ctx.last_loss_at = loss_streak(deployment.pk)
        if any(s.limits.get("correlation_max") is not None for s in scopes):
            bars = next((s.params["correlation_bars"] for s in reversed(scopes)
                         if s.params.get("correlation_bars")), None)
            if bars:
                ctx.correlations = correlations(deployment, scopes, int(bars), now)
        ctx.adaptive = adaptive_throttle(ctx)
        if ctx.adaptive is not None:
            last = (SizingAdjustment.objects.filter(deployment_id=deployment.pk)
                    .values_list("risk_after_pct", flat=True).first())
            ctx.adaptive["previous_pct"] = last
            ctx.adaptive["deployment_id"] = deployment.pk
    return ctx


def build_scopes(keys: list[tuple[str, str]], *, now: datetime, names: dict | None = None,
                 extra_deployments=()) -> list[ScopeState]:
    """ScopeState for each (scope, key), widest first, with limits, overrides, kill switch and
    the scope's aggregate usage (equity, peak, day start, positions, pending entries, orders in
    the last minute)."""
    names = names or {}
    key_list = [k for _, k in keys]
    profiles, overrides, switches = scope_rows(key_list, now)
    books = deployment_books(now=now) if "global" in key_list else {}
    for extra in extra_deployments:
        if extra is not None and extra not in books:
            books.update(deployment_books(now=now, deployment_ids=[extra]))
    positions = list(Position.objects.filter(deployment_id__in=list(books)).exclude(amount=0)
                     .values_list("deployment_id", "symbol", "amount", "mark_price", "entry_price"))
    minute_ago = now - timedelta(seconds=60)
    orders = list(Order.objects.filter(deployment_id__in=list(books))
                  .filter(Q(created_at__gte=minute_ago) | Q(status__in=OPEN_STATUSES))
                  .values_list("deployment_id", "symbol", "side", "amount", "filled", "price", "status",
                               "created_at", "parent_id", "decision"))
    marks = {}
    for dep, symbol, amount, mark, entry in positions:
        marks[symbol] = mark or entry or marks.get(symbol)

    out = []
    for scope, key in keys:
        profile = profiles.get(key)
        limits = {f: getattr(profile, f) if profile else None for f in LIMITS}
        params = {f: getattr(profile, f) if profile else None for f in PARAMS}
        active = []
        for o in sorted(overrides.get(key, []), key=lambda o: o.created_at):
            if o.limit in limits:
                limits[o.limit] = int(o.value) if o.limit in INT_LIMITS else o.value
            elif o.limit in params:
                params[o.limit] = o.value
            active.append({"id": o.pk, "limit": o.limit, "value": str(o.value), "reason": o.reason,
                           "expires_at": o.expires_at.isoformat()})
        switch = switches.get(key)
        state = ScopeState(scope=scope, key=key, label=_label(scope, key, profile, names), limits=limits,
                           params=params, overrides=active,
                           kill_switch={"id": switch.pk, "reason": switch.reason, "automatic": switch.automatic}
                           if switch else None)
        members = {d for d, b in books.items() if _in_scope(scope, key, b, d)}
        for d in members:
            b = books[d]
            state.equity += b["equity"]
            state.peak_equity += b["peak"]  # sum of peaks >= peak of the sum: the drawdown is not understated
            state.day_start_equity += b["day_start"]
        for dep, symbol, amount, mark, entry in positions:
            if dep in members:
                price = mark or entry or Decimal(0)
                state.positions[symbol] = state.positions.get(symbol, Decimal(0)) + abs(amount) * price
        for dep, symbol, side, amount, filled, price, status, created, parent, decision in orders:
            if dep not in members:
                continue
            if created >= minute_ago:
                state.orders_last_minute += 1
            if status in OPEN_STATUSES and side == "buy" and parent is None:
                ref = price or _decision_price(decision) or marks.get(symbol)
                if ref:
                    state.pending[symbol] = state.pending.get(symbol, Decimal(0)) + (amount - filled) * ref
        out.append(state)
    return out


INT_LIMITS = ("open_positions_max", "orders_per_minute", "loss_streak_max")


def _decision_price(decision) -> Decimal | None:
    try:
        value = (decision or {}).get("close") or (decision or {}).get("price")
        return Decimal(str(value)) if value is not None else None
    except (ArithmeticError, ValueError, TypeError):
        return None


# --- loss streak ---------------------------------------------------------------------------------
_TRADES_CACHE: OrderedDict = OrderedDict()  # deployment id -> (last fill id, [(time, pnl)])
_CACHE_SIZE = 2048


def closed_trades(deployment_id: int) -> list[tuple[datetime, Decimal]]:
    """(time, realised PnL net of fees) of each sell fill that closed long exposure, in time order:
    the deployment's fills replayed at average cost. Cached until a new fill arrives."""
    last = Fill.objects.filter(order__deployment_id=deployment_id).aggregate(m=Max("id"))["m"]
    cached = _TRADES_CACHE.get(deployment_id)
    if cached and cached[0] == last:
        return cached[1]
    held, cost, out = Decimal(0), Decimal(0), []
    fills = (Fill.objects.filter(order__deployment_id=deployment_id).order_by("time", "id")
             .values_list("order_id", "order__side", "amount", "price", "fee", "fee_currency", "order__symbol"))
    trade_pnl: dict[int, list] = OrderedDict()
    for order_id, side, amount, price, fee, fee_ccy, symbol in fills:
        quote = symbol.split("/")[-1].split(":")[0]
        fee_quote = fee if fee_ccy == quote else (fee * price if fee_ccy else Decimal(0))
        if side == "buy":
            held += amount
            cost += amount * price + fee_quote
        elif held > 0:
            closing = min(amount, held)
            avg = cost / held
            pnl = closing * (price - avg) - fee_quote
            cost -= avg * closing
            held -= closing
            entry = trade_pnl.setdefault(order_id, [None, Decimal(0)])
            entry[1] += pnl
            entry[0] = entry[0] or order_id
            trade_pnl[order_id] = entry
    times = dict(Order.objects.filter(pk__in=list(trade_pnl)).values_list("pk", "updated_at"))
    out = [(times.get(oid), pnl) for oid, (_, pnl) in trade_pnl.items()]
    _TRADES_CACHE[deployment_id] = (last, out)
    _TRADES_CACHE.move_to_end(deployment_id)
    while len(_TRADES_CACHE) > _CACHE_SIZE:
        _TRADES_CACHE.popitem(last=False)
    return out


def loss_streak(deployment_id: int) -> tuple[int, datetime | None]:
    """Consecutive losing closed trades at the end of the deployment's history, and when the last
    of them closed."""
    trades = closed_trades(deployment_id)
    streak, last_at = 0, None
    for time, pnl in reversed(trades):
        if pnl >= 0:
            break
        streak += 1
        last_at = last_at or time
    return streak, last_at


# --- correlation ---------------------------------------------------------------------------------
_CORR_CACHE: OrderedDict = OrderedDict()


def _returns(market_id: int, timeframe: str, bars: int, bar_key: int) -> np.ndarray:
    key = ("r", market_id, timeframe, bars, bar_key)
    if key not in _CORR_CACHE:
        close = latest_candles(market_id, timeframe, bars + 1).close
        _CORR_CACHE[key] = np.diff(np.log(close)) if len(close) > 2 else np.empty(0)
        while len(_CORR_CACHE) > _CACHE_SIZE:
            _CORR_CACHE.popitem(last=False)
    return _CORR_CACHE[key]


def correlation(a: np.ndarray, b: np.ndarray) -> float | None:
    """Pearson correlation of the two return series' common tail; None with fewer than 3 points
    or a flat series (no evidence either way)."""
    n = min(len(a), len(b))
    if n < 3:
        return None
    x, y = a[-n:], b[-n:]
    if np.std(x) == 0 or np.std(y) == 0:
        return None
    return float(np.corrcoef(x, y)[0, 1])


def correlations(deployment, scopes: list[ScopeState], bars: int, now: datetime) -> dict[str, Decimal]:
    """ρ of the deployment's market returns with each open position's market, over `bars` bars of
    the deployment's timeframe (stored candles; cached per bar)."""
    symbols = {sym for s in scopes if s.limits.get("correlation_max") is not None for sym in s.positions}
    symbols.discard(deployment.config.market.symbol)
    if not symbols:
        return {}
    timeframe = deployment.config.timeframe
    bar_key = floor_time(int(now.timestamp() * 1000), timeframe)  # calendar-aware: monthly bars vary in length
    markets = dict(Position.objects.filter(symbol__in=symbols).exclude(amount=0)
                   .values_list("symbol", "deployment__config__market_id").distinct())
    own = deployment.config.market_id
    out = {}
    for symbol, market_id in markets.items():
        key = ("rho", own, market_id, timeframe, bars, bar_key)
        if key not in _CORR_CACHE:  # one computation per pair and bar
            rho = correlation(_returns(own, timeframe, bars, bar_key), _returns(market_id, timeframe, bars, bar_key))
            _CORR_CACHE[key] = Decimal(str(round(rho, 4))) if rho is not None else None
        if _CORR_CACHE[key] is not None:
            out[symbol] = _CORR_CACHE[key]
    return out


# --- adaptive sizing -----------------------------------------------------------------------------
def _specific(scopes: list[ScopeState], name: str):
    """The most specific scope's value of a parameter (deployment over account over user over global)."""
    for s in reversed(scopes):
        if s.params.get(name) is not None:
            return s.params[name]
    return None


def adaptive_throttle(ctx: RiskContext) -> dict | None:
    """The drawdown throttle: full risk per trade until the deployment's drawdown reaches the
    throttle start, then linearly down to the floor at the drawdown limit. Always within
    [floor, the tightest profile risk per trade]. None when disabled, unconfigured, or while a
    manual override of risk per trade applies (a person chose the value; the throttle resumes
    when the override ends)."""
    scopes = ctx.scopes
    if not _specific(scopes, "adaptive_enabled"):
        return None
    if any(o["limit"] == "risk_per_trade_pct" for s in scopes for o in s.overrides):
        return None
    caps = [(s.limits["risk_per_trade_pct"], s) for s in scopes if s.limits.get("risk_per_trade_pct") is not None]
    ends = [s.limits["drawdown_pct"] for s in scopes if s.limits.get("drawdown_pct") is not None]
    floor, start = _specific(scopes, "adaptive_floor_pct"), _specific(scopes, "adaptive_start_pct")
    if not caps or not ends or floor is None or start is None:
        return None
    ceiling, ceiling_scope = min(caps, key=lambda c: c[0])
    end = min(ends)
    floor = min(floor, ceiling)
    dd = ctx.deployment_drawdown_pct
    if dd <= start or end <= start:
        scale = Decimal(1) if dd <= start else Decimal(0)
    elif dd >= end:
        scale = Decimal(0)
    else:
        scale = (end - dd) / (end - start)
    risk = (floor + (ceiling - floor) * scale).quantize(Decimal("0.0001"))
    risk = min(max(risk, floor), ceiling)
    if scale == 1:
        why = f"drawdown {dd:.2f} % is within the throttle start {start} %: full risk {ceiling} %"
    elif scale == 0:
        why = f"drawdown {dd:.2f} % is at or past the limit {end} %: floor {floor} %"
    else:
        why = (f"drawdown {dd:.2f} % is between the throttle start {start} % and the limit {end} %: "
               f"{scale * HUNDRED:.0f} % of the way from the floor {floor} % to the full {ceiling} %")
    return {"risk_pct": risk, "reason": why,
            "inputs": {"equity": str(ctx.deployment_equity), "drawdown_pct": f"{dd:.4f}", "throttle_start_pct":
                       str(start), "drawdown_limit_pct": str(end), "floor_pct": str(floor),
                       "ceiling_pct": str(ceiling), "ceiling_scope": ceiling_scope.label}}


# --- what the page, the API and the command show -------------------------------------------------
def _pct(part: Decimal, whole: Decimal) -> Decimal | None:
    return (part / whole * HUNDRED) if whole and whole > 0 else None


def scope_usage(s: ScopeState, ctx: RiskContext, symbol: str | None) -> dict:
    """{limit: current value} for one scope, in the limit's unit (None where it does not apply)."""
    held = {sym: s.positions.get(sym, Decimal(0)) + s.pending.get(sym, Decimal(0))
            for sym in set(s.positions) | set(s.pending)}
    total = sum(held.values(), Decimal(0))
    by_asset: dict[str, Decimal] = {}
    for sym, v in held.items():
        by_asset[base_of(sym)] = by_asset.get(base_of(sym), Decimal(0)) + v
    own = s.scope == Scope.DEPLOYMENT
    return {
        "risk_per_trade_pct": None,
        "position_notional_max": max(held.values(), default=Decimal(0)),
        "open_positions_max": len(s.positions),
        "asset_exposure_pct": _pct(max(by_asset.values(), default=Decimal(0)), s.equity),
        "total_exposure_pct": _pct(total, s.equity),
        "leverage_max": (total / s.equity) if s.equity > 0 else None,
        "daily_loss_pct": max(_pct(s.day_start_equity - s.equity, s.day_start_equity) or Decimal(0), Decimal(0)),
        "drawdown_pct": max(_pct(s.peak_equity - s.equity, s.peak_equity) or Decimal(0), Decimal(0)),
        "orders_per_minute": s.orders_last_minute,
        "loss_streak_max": ctx.loss_streak if own else None,
        "correlation_max": (max((abs(r) for sym, r in ctx.correlations.items() if sym in s.positions),
                                default=None) if own or ctx.correlations else None),
    }


def _num(v):
    if v is None:
        return None
    if isinstance(v, Decimal):
        return float(round(v, 6))
    return v


def overview(ctx: RiskContext, *, symbol: str | None = None) -> dict:
    """Limits and usage per scope (widest first), the effective risk per trade, active
    overrides and kill switches: the one shape the API, the command and the page use."""
    risk_pct, risk_scope, how = effective_risk_pct(ctx)
    scopes = []
    for s in ctx.scopes:
        usage = scope_usage(s, ctx, symbol)
        limits = []
        for name, (label, unit) in LIMITS.items():
            value = s.limits.get(name)
            used = usage.get(name)
            if name == "risk_per_trade_pct" and s.scope == Scope.DEPLOYMENT and risk_pct is not None:
                used = risk_pct
            ratio = (float(Decimal(used) / Decimal(value)) if value not in (None, 0) and used is not None
                     else (1.0 if value == 0 and used else None))
            limits.append({"limit": name, "label": label, "unit": unit, "value": _num(value), "used": _num(used),
                           "ratio": round(ratio, 4) if ratio is not None else None,
                           "overridden": any(o["limit"] == name for o in s.overrides)})
        scopes.append({"scope": s.scope, "key": s.key, "label": s.label, "equity": _num(s.equity),
                       "peak_equity": _num(s.peak_equity), "day_start_equity": _num(s.day_start_equity),
                       "limits": limits, "overrides": s.overrides, "kill_switch": s.kill_switch,
                       "params": {k: _num(v) for k, v in s.params.items()}})
    return {"time": ctx.now.isoformat(), "scopes": scopes,
            "risk_per_trade_pct": _num(risk_pct), "risk_per_trade_source": how if risk_pct is not None else None,
            "adaptive": ({"risk_pct": _num(ctx.adaptive["risk_pct"]), "reason": ctx.adaptive["reason"],
                          "inputs": ctx.adaptive["inputs"]} if ctx.adaptive else None),
            "loss_streak": ctx.loss_streak}


def context_for(*, user=None, account=None, deployment=None, now=None) -> RiskContext:
    """The risk context of a target (a deployment gives all four scopes; an account three; a user
    two; nothing, the global scope alone)."""
    now = now or timezone.now()
    if deployment is not None:
        market = deployment.config.market
        return risk_context(OrderIntent(deployment_id=deployment.pk, account_id=deployment.account_id,
                                    owner_id=deployment.owner_id, symbol=market.symbol, side="buy",
                                    amount=Decimal(0), price=Decimal(0), source="watch"), now=now)
    names = {}
    if account is not None:
        user = account.owner
        names[f"account:{account.pk}"] = account.name
    if user is not None:
        names[f"user:{user.pk}"] = user.get_username()
    targets = Targets(user_id=user.pk if user else None, account_id=account.pk if account else None)
    return RiskContext(now=now, scopes=build_scopes(targets.keys(), now=now, names=names))
