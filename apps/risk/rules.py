"""The rules of the pre-trade check, on a loaded context: pure Python, no database, fast.

check.risk_check is the interface; selectors.risk_context loads the context; this module decides.

How limits combine: every scope that applies (global, the owner, the account, the deployment)
is checked against ITS OWN aggregate (the account's positions for an account limit, the
platform's for a global one). For sizing limits each scope gives the largest amount it allows,
and the smallest wins: the verdict names that limit and scope. State limits (kill switch, daily
loss, drawdown, open positions, orders per minute, loss-streak cooldown, correlation) reject.
Orders that reduce a position are never blocked by entry limits (nor by the kill switch).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_DOWN, Decimal

HUNDRED = Decimal(100)

# limit field -> (label, unit). Kinds: SIZING limits resize, the others reject.
LIMITS: dict[str, tuple[str, str]] = {
    "risk_per_trade_pct": ("Risk per trade", "% of equity"),
    "position_notional_max": ("Position notional", "quote"),
    "open_positions_max": ("Open positions", "positions"),
    "asset_exposure_pct": ("Exposure per asset", "% of equity"),
    "total_exposure_pct": ("Total exposure", "% of equity"),
    "leverage_max": ("Leverage", "× equity"),
    "daily_loss_pct": ("Daily loss", "% of day-start equity"),
    "drawdown_pct": ("Drawdown from peak", "% of peak equity"),
    "orders_per_minute": ("Orders per minute", "orders"),
    "loss_streak_max": ("Loss-streak cooldown", "consecutive losses"),
    "correlation_max": ("Correlation with open positions", "|ρ|"),
}
SIZING = ("risk_per_trade_pct", "position_notional_max", "asset_exposure_pct", "total_exposure_pct", "leverage_max")
BREACH_LIMITS = ("daily_loss_pct", "drawdown_pct")  # these trip the kill switch by themselves


@dataclass(frozen=True)
class OrderIntent:
    deployment_id: int | None
    account_id: int | None
    owner_id: int | None
    symbol: str
    side: str                      # "buy" | "sell"
    amount: Decimal                # base currency, already rounded to the market's step
    price: Decimal                 # reference price (expected fill)
    stop_price: Decimal | None = None
    reduces_position: bool = False  # an exit / protective order: never blocked by entry limits
    source: str = "engine"          # "engine" | "manual" | "api" | "backtest"


@dataclass
class Verdict:
    outcome: str                   # "approved" | "resized" | "rejected"
    amount: Decimal
    reasons: list[dict] = field(default_factory=list)  # {"limit", "value", "scope", "message", ...}
    breaches: list[dict] = field(default_factory=list)  # daily-loss / drawdown breaches (trip the kill switch)
    overrides: list[dict] = field(default_factory=list)  # active overrides that applied
    risk_per_trade_pct: str | None = None  # the effective risk per trade used (adaptive or not)

    @property
    def approved(self) -> bool:
        return self.outcome != "rejected" and self.amount > 0

    @property
    def reason(self) -> str:
        return "; ".join(r["message"] for r in self.reasons)

    def as_dict(self) -> dict:
        data = asdict(self)
        data["amount"] = str(self.amount)
        data["approved"] = self.approved
        data["reason"] = self.reason
        return data


@dataclass
class ScopeState:
    """One scope's limits (overrides applied) and its current usage."""

    scope: str                      # global | user | account | deployment
    key: str                        # "global", "user:3", ...
    label: str                      # for people: "Global", "Account Paper", ...
    limits: dict = field(default_factory=dict)       # limit field -> value (None: no limit here)
    params: dict = field(default_factory=dict)       # cooldown_minutes, correlation_bars, adaptive_*, ...
    overrides: list = field(default_factory=list)    # active overrides here: {"id", "limit", "value", "expires_at"}
    kill_switch: dict | None = None                  # the active trip: {"id", "reason", "automatic"}
    equity: Decimal = Decimal(0)
    day_start_equity: Decimal = Decimal(0)
    peak_equity: Decimal = Decimal(0)
    positions: dict = field(default_factory=dict)    # symbol -> notional held (quote), open positions only
    pending: dict = field(default_factory=dict)      # symbol -> notional of open entry orders not yet filled
    orders_last_minute: int = 0


@dataclass
class RiskContext:
    now: datetime
    scopes: list                    # ScopeState, widest first
    amount_step: Decimal | None = None
    deployment_equity: Decimal = Decimal(0)
    deployment_drawdown_pct: Decimal = Decimal(0)
    loss_streak: int = 0            # the deployment's own consecutive losing trades
    last_loss_at: datetime | None = None
    correlations: dict = field(default_factory=dict)  # open symbol -> ρ with the intent's symbol
    adaptive: dict | None = None    # {"risk_pct", "reason", "inputs"} when the throttle applies


def base_of(symbol: str) -> str:
    return symbol.split("/")[0].split(":")[0]


def _fmt(value) -> str:
    if isinstance(value, Decimal):
        q = value.quantize(Decimal("0.0001")) if value == value.to_integral() or abs(value) >= 1 else value
        return format(q.normalize(), "f")
    return str(value)


def _reason(limit: str, value, scope: ScopeState | None, message: str, **extra) -> dict:
    return {"limit": limit, "value": _fmt(value) if value is not None else None,
            "scope": scope.scope if scope else None, "scope_key": scope.key if scope else None,
            "scope_label": scope.label if scope else None, "message": message, **extra}


def _floor(amount: Decimal, step: Decimal | None) -> Decimal:
    if amount <= 0:
        return Decimal(0)
    if not step:
        return amount
    return (amount / step).to_integral_value(rounding=ROUND_DOWN) * step


def effective_risk_pct(ctx: RiskContext) -> tuple[Decimal | None, ScopeState | None, str]:
    """The risk per trade that sizes an entry: the tightest profile value over the scopes, lowered
    by the adaptive throttle where it applies. Returns (pct, the scope it came from, how)."""
    best, where = None, None
    for s in ctx.scopes:
        value = s.limits.get("risk_per_trade_pct")
        if value is not None and (best is None or value < best):
            best, where = value, s
    how = "profile"
    if best is not None and any(o["limit"] == "risk_per_trade_pct" for s in ctx.scopes for o in s.overrides):
        how = "override"
    elif best is not None and ctx.adaptive and ctx.adaptive["risk_pct"] < best:
        best, how = ctx.adaptive["risk_pct"], "adaptive"
    return best, where, how


def evaluate(intent: OrderIntent, ctx: RiskContext) -> Verdict:
    """The check itself, on a loaded context: pure and fast (no database)."""
    applied = [dict(o, scope=s.scope, scope_label=s.label) for s in ctx.scopes for o in s.overrides]
    if intent.reduces_position:
        return Verdict("approved", intent.amount, [_reason(None, None, None, "Exit or reducing order: entry limits "
                                                                             "and the kill switch do not block it.")],
                       overrides=applied)
    amount, price = Decimal(intent.amount), Decimal(intent.price)
    if amount <= 0 or price <= 0:
        return Verdict("rejected", Decimal(0), [_reason("invalid", None, None,
                                                        "The intent needs an amount and a price above 0.")])
    rejects, breaches = [], []
    for s in ctx.scopes:
        if s.kill_switch:
            rejects.append(_reason("kill_switch", None, s, f"Kill switch active at {s.label}: {s.kill_switch['reason']}",
                                   kill_switch=s.kill_switch["id"]))
    for s in ctx.scopes:
        rejects += state_rejects(intent, ctx, s, breaches)
    risk_pct, risk_scope, how = effective_risk_pct(ctx)
    extra = dict(breaches=breaches, overrides=applied, risk_per_trade_pct=_fmt(risk_pct) if risk_pct is not None else None)
    if rejects:
        return Verdict("rejected", Decimal(0), rejects, **extra)

    allowed, binding = amount, None
    for limit, cap, value, scope, message in _sizing_caps(intent, ctx, risk_pct, risk_scope, how):
        if cap < allowed:
            allowed, binding = cap, (limit, value, scope, message)
    allowed = _floor(min(allowed, amount), ctx.amount_step)
    if binding is None:
        return Verdict("approved", amount, [], **extra)
    limit, value, scope, message = binding
    if allowed <= 0:
        return Verdict("rejected", Decimal(0), [_reason(limit, value, scope, message + ": no room for this entry.")],
                       **extra)
    return Verdict("resized", allowed, [_reason(limit, value, scope, f"{message}: resized from {_fmt(amount)} to "
                                                                     f"{_fmt(allowed)}.", requested=_fmt(amount))],
                   **extra)


def state_rejects(intent: OrderIntent, ctx: RiskContext, s: ScopeState, breaches: list) -> list[dict]:
    out, L = [], s.limits
    limit = L.get("daily_loss_pct")
    if limit is not None and s.day_start_equity > 0:
        loss = (s.day_start_equity - s.equity) / s.day_start_equity * HUNDRED
        if loss >= limit:
            message = (f"Daily loss {_fmt(loss)} % reached the limit of {_fmt(limit)} % at {s.label} "
                       f"(equity {_fmt(s.equity)} from {_fmt(s.day_start_equity)} at the day's start)")
            out.append(_reason("daily_loss_pct", limit, s, message, observed=_fmt(loss)))
            breaches.append({"limit": "daily_loss_pct", "value": _fmt(limit), "observed": _fmt(loss),
                             "scope_key": s.key, "message": message})
    limit = L.get("drawdown_pct")
    if limit is not None and s.peak_equity > 0:
        dd = (s.peak_equity - s.equity) / s.peak_equity * HUNDRED
        if dd >= limit:
            message = (f"Drawdown {_fmt(dd)} % from the peak {_fmt(s.peak_equity)} reached the limit of "
                       f"{_fmt(limit)} % at {s.label}")
            out.append(_reason("drawdown_pct", limit, s, message, observed=_fmt(dd)))
            breaches.append({"limit": "drawdown_pct", "value": _fmt(limit), "observed": _fmt(dd),
                             "scope_key": s.key, "message": message})
    limit = L.get("open_positions_max")
    if limit is not None and intent.symbol not in s.positions:
        held = len(s.positions) + sum(1 for sym in s.pending if sym not in s.positions and sym != intent.symbol)
        if held >= limit:
            out.append(_reason("open_positions_max", limit, s, f"{held} open positions at {s.label}; the limit is "
                                                                f"{limit}", observed=held))
    limit = L.get("orders_per_minute")
    if limit is not None and s.orders_last_minute >= limit:
        out.append(_reason("orders_per_minute", limit, s, f"{s.orders_last_minute} orders in the last minute at "
                                                           f"{s.label}; the limit is {limit}",
                           observed=s.orders_last_minute))
    limit, cooldown = L.get("loss_streak_max"), s.params.get("cooldown_minutes")
    if limit is not None and cooldown is not None and ctx.loss_streak >= limit and ctx.last_loss_at is not None:
        until = ctx.last_loss_at + timedelta(minutes=int(cooldown))
        if ctx.now < until:
            out.append(_reason("loss_streak_max", limit, s, f"{ctx.loss_streak} losing trades in a row (limit "
                                                             f"{limit} at {s.label}): cooling down until "
                                                             f"{until:%Y-%m-%d %H:%M} UTC", observed=ctx.loss_streak,
                               until=until.isoformat()))
    limit = L.get("correlation_max")
    if limit is not None:
        for symbol, rho in ctx.correlations.items():
            if symbol in s.positions and symbol != intent.symbol and rho is not None and abs(rho) > limit:
                out.append(_reason("correlation_max", limit, s, f"Returns of {intent.symbol} and the open "
                                                                f"{symbol} correlate at {_fmt(rho)}; the limit at "
                                                                f"{s.label} is {_fmt(limit)}", observed=_fmt(rho)))
    return out


def _sizing_caps(intent: OrderIntent, ctx: RiskContext, risk_pct, risk_scope, how):
    """(limit, the largest amount it allows, limit value, scope, message) for each sizing limit."""
    price = Decimal(intent.price)
    if risk_pct is not None and ctx.deployment_equity > 0:
        per_unit = abs(price - Decimal(intent.stop_price)) if intent.stop_price else price
        if per_unit > 0:
            budget = ctx.deployment_equity * risk_pct / HUNDRED
            basis = "to the stop" if intent.stop_price else "the whole notional (no stop)"
            label = {"adaptive": f"adaptive (drawdown throttle) within {risk_scope.label}",
                     "override": f"{risk_scope.label}, overridden"}.get(how, risk_scope.label)
            yield ("risk_per_trade_pct", budget / per_unit, risk_pct, risk_scope,
                   f"Risk per trade {_fmt(risk_pct)} % ({label}) allows {_fmt(budget)} at risk of equity "
                   f"{_fmt(ctx.deployment_equity)}, measured {basis}")
    base = base_of(intent.symbol)
    for s in ctx.scopes:
        L = s.limits
        held = {sym: s.positions.get(sym, Decimal(0)) + s.pending.get(sym, Decimal(0))
                for sym in set(s.positions) | set(s.pending)}
        total = sum(held.values(), Decimal(0))
        limit = L.get("position_notional_max")
        if limit is not None:
            room = limit - held.get(intent.symbol, Decimal(0))
            yield ("position_notional_max", room / price, limit, s,
                   f"Position notional limit {_fmt(limit)} at {s.label} ({_fmt(held.get(intent.symbol, 0))} held)")
        limit = L.get("asset_exposure_pct")
        if limit is not None:
            in_asset = sum((v for sym, v in held.items() if base_of(sym) == base), Decimal(0))
            room = s.equity * limit / HUNDRED - in_asset
            yield ("asset_exposure_pct", room / price, limit, s,
                   f"Exposure to {base} limited to {_fmt(limit)} % of equity {_fmt(s.equity)} at {s.label} "
                   f"({_fmt(in_asset)} held)")
        limit = L.get("total_exposure_pct")
        if limit is not None:
            room = s.equity * limit / HUNDRED - total
            yield ("total_exposure_pct", room / price, limit, s,
                   f"Total exposure limited to {_fmt(limit)} % of equity {_fmt(s.equity)} at {s.label} "
                   f"({_fmt(total)} held)")
        limit = L.get("leverage_max")
        if limit is not None:
            room = s.equity * limit - total
            yield ("leverage_max", room / price, limit, s,
                   f"Leverage limited to {_fmt(limit)}× equity {_fmt(s.equity)} at {s.label} ({_fmt(total)} held)")
