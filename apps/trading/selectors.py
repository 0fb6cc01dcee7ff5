"""Named reads for trading's surfaces (API and dashboard): what a user may see, equity series,
closed trades rebuilt from fills, per-config performance and the notices a deployment page shows.

Nothing here invents a figure: a deployment with no snapshot has no equity (None), a config with
no backtest evidence has no backtest figures, and the pages say so instead of showing a zero.
Money is Decimal in the quote currency of the deployment's market; times are UTC.
"""
from __future__ import annotations

from datetime import datetime, timezone as dt_timezone
from dataclasses import dataclass, field
from decimal import Decimal

import numpy as np
from django.db.models import OuterRef, Q, QuerySet, Subquery

from apps.backtests.selectors import _downsample_index
from apps.marketdata.models import CandleCoverage
from apps.risk.rules import LIMITS
from apps.risk.selectors import context_for as risk_context_for
from apps.strategies.models import ConfigEvidence, EvidenceSource, StrategyConfig
from tradepulse.core.permissions import can, visible_to

from .models import (OPEN_STATUSES, Deployment, DeploymentState, ExchangeAccount, Fill, Order,
                     PortfolioSnapshot, Position)
from .services.tracking import deployment_tracking_error
from .trades import RoundTrip, round_trips  # noqa: F401 (named reads of trading: closed trades)

ZERO = Decimal(0)


# --- what a user may see --------------------------------------------------------------------------
def deployments_visible(user) -> QuerySet[Deployment]:
    """Deployments `user` may see, with what their rows show, and their latest equity
    (`latest_equity`, `latest_equity_at`: None before the first tick)."""
    latest = PortfolioSnapshot.objects.filter(deployment=OuterRef("pk")).order_by("-time")
    return (visible_to(user, Deployment.objects.all())
            .select_related("config__market__exchange", "account__exchange", "owner")
            .annotate(latest_equity=Subquery(latest.values("equity")[:1]),
                      latest_equity_at=Subquery(latest.values("time")[:1])))


def accounts_visible(user) -> QuerySet[ExchangeAccount]:
    return visible_to(user, ExchangeAccount.objects.all()).select_related("exchange", "owner")


def deployment_for(user, pk: int) -> Deployment | None:
    """The deployment if `user` may see it (else None: the page answers 404)."""
    return deployments_visible(user).filter(pk=pk).first()


def account_for(user, pk: int) -> ExchangeAccount | None:
    return accounts_visible(user).filter(pk=pk).first()


def may_change(user, obj) -> bool:
    return can(user, "change", obj)


def may_operate(user, obj) -> bool:
    """Pause, stop, cancel, close: whoever may change it, and operators (tradepulse.core.permissions)."""
    return can(user, "operate", obj)


def deployments_allowed(user, deployments, action: str) -> set[int]:
    """Ids among `deployments` that `user` may `action` ("change": activate; "operate": pause,
    stop, cancel, close, flatten), in one query whatever their number."""
    ids = [d.pk for d in deployments]
    if not ids:
        return set()
    return set(visible_to(user, Deployment.objects.filter(pk__in=ids), action).values_list("pk", flat=True))


def orders_of(deployments) -> QuerySet[Order]:
    return Order.objects.filter(deployment__in=deployments).select_related("deployment")


def fills_of(deployments) -> QuerySet[Fill]:
    return Fill.objects.filter(order__deployment__in=deployments).select_related("order__deployment")


def open_positions_of(deployments) -> QuerySet[Position]:
    return (Position.objects.filter(deployment__in=deployments).exclude(side="flat")
            .select_related("deployment__config__market"))


# --- equity series --------------------------------------------------------------------------------
def equity_history(snapshots: QuerySet[PortfolioSnapshot], *, max_points: int = 1000, start=None, end=None) -> dict:
    """Equity over time for a chart, at most ~max_points points (each bucket keeps its first,
    lowest and highest point, so peaks and troughs survive).

    Several deployments are summed: at each snapshot time, the total is the sum of every
    deployment's latest equity so far (a deployment counts from its first snapshot on).
    Returns {"time": [epoch ms], "equity": [float], "points", "snapshots", "deployments"};
    equity is in the deployments' quote currency (the sum assumes one quote currency, which the
    caller states when they differ).
    """
    if start is not None:
        snapshots = snapshots.filter(time__gte=start)
    if end is not None:
        snapshots = snapshots.filter(time__lt=end)
    rows = list(snapshots.order_by("time", "pk").values_list("time", "deployment_id", "account_id", "equity"))
    latest: dict = {}
    times: list[int] = []
    totals: list[float] = []
    for time, deployment_id, account_id, equity in rows:
        latest[deployment_id or f"account-{account_id}"] = equity
        ms = int(time.timestamp() * 1000)
        total = float(sum(latest.values(), ZERO))
        if times and times[-1] == ms:
            totals[-1] = total  # same tick of several deployments: one point
        else:
            times.append(ms)
            totals.append(total)
    values = np.asarray(totals, dtype=np.float64)
    index = _downsample_index(values, max_points) if len(values) else np.arange(0)
    return {"time": [times[i] for i in index], "equity": values[index].round(8).tolist(), "points": int(len(index)),
            "snapshots": len(rows), "deployments": len(latest)}


# --- performance ----------------------------------------------------------------------------------
@dataclass
class Performance:
    """Live results of some deployments (one config's, or one deployment's), with the config's
    backtest evidence beside them. None = not measured yet (never shown as 0)."""

    deployments: int = 0
    active: int = 0
    capital: Decimal = ZERO
    equity: Decimal | None = None
    trades: int = 0
    wins: int = 0
    realised_pnl: Decimal = ZERO
    unrealised_pnl: Decimal = ZERO
    fees: Decimal = ZERO
    closed_pnl: Decimal = ZERO
    backtest: dict | None = None
    modes: set = field(default_factory=set)

    @property
    def win_rate(self) -> float | None:
        return self.wins / self.trades if self.trades else None

    @property
    def live_return(self) -> float | None:
        if self.equity is None or not self.capital:
            return None
        return float(self.equity / self.capital - 1)

    def as_dict(self) -> dict:
        return {"deployments": self.deployments, "active": self.active, "modes": sorted(self.modes),
                "capital": self.capital, "equity": self.equity, "trades": self.trades, "wins": self.wins,
                "win_rate": self.win_rate, "realised_pnl": self.realised_pnl, "unrealised_pnl": self.unrealised_pnl,
                "fees": self.fees, "closed_trades_pnl": self.closed_pnl, "live_return": self.live_return,
                "backtest": self.backtest}


def backtest_evidence(config_ids) -> dict[int, dict]:
    """The latest backtest evidence of each config: {config_id: {...figures, period}}."""
    out: dict[int, dict] = {}
    rows = (ConfigEvidence.objects.filter(config_id__in=config_ids, source=EvidenceSource.BACKTEST)
            .order_by("config_id", "-period_end", "-pk"))
    for ev in rows:
        if ev.config_id in out:
            continue
        metrics = ev.metrics or {}
        out[ev.config_id] = {"trades": ev.trades, "total_return": ev.total_return, "sharpe": ev.sharpe,
                             "max_drawdown": ev.max_drawdown, "win_rate": metrics.get("win_rate"),
                             "period_start": ev.period_start, "period_end": ev.period_end, "run_id": ev.run_id}
    return out


def performance(deployments: QuerySet[Deployment], *, by: str = "config") -> dict[int, Performance]:
    """Live performance grouped by config (`by="config"`) or per deployment (`by="deployment"`):
    closed trades and win rate from fills, realised/unrealised PnL and fees from positions, equity
    from the latest snapshots (None until every deployment in the group has one). A handful of
    queries whatever the number of deployments."""
    deployments = list(deployments.select_related("config__market", "account")
                       .annotate(latest_equity=Subquery(PortfolioSnapshot.objects.filter(deployment=OuterRef("pk"))
                                                        .order_by("-time").values("equity")[:1])))
    key_of = {d.pk: (d.config_id if by == "config" else d.pk) for d in deployments}
    result: dict[int, Performance] = {}
    missing_equity: set[int] = set()
    for d in deployments:
        perf = result.setdefault(key_of[d.pk], Performance())
        perf.deployments += 1
        perf.active += d.state == DeploymentState.ACTIVE
        perf.capital += d.capital
        perf.modes.add(d.account.mode)
        if d.latest_equity is None:
            missing_equity.add(key_of[d.pk])
        else:
            perf.equity = (perf.equity or ZERO) + d.latest_equity
    for key in missing_equity:
        result[key].equity = None
    ids = list(key_of)
    for p in Position.objects.filter(deployment_id__in=ids):
        perf = result[key_of[p.deployment_id]]
        perf.realised_pnl += p.realised_pnl
        perf.unrealised_pnl += p.unrealised_pnl
        perf.fees += p.fees
    base_of = {d.config.market.symbol: d.config.market.base for d in deployments}
    steps = {d.config.market.symbol: d.config.market.amount_step or Decimal("1e-12") for d in deployments}
    fills = Fill.objects.filter(order__deployment_id__in=ids).select_related("order")
    for trip in round_trips(fills, base_of=base_of, steps=steps):
        perf = result[key_of[trip.deployment_id]]
        perf.trades += 1
        perf.wins += trip.won
        perf.closed_pnl += trip.pnl
    evidence = backtest_evidence({d.config_id for d in deployments})
    for d in deployments:
        result[key_of[d.pk]].backtest = evidence.get(d.config_id)
    return result


def config_performance(user, *, config_id: int | None = None, mode: str | None = None) -> list[dict]:
    """One row per config that has deployments `user` may see: its live results beside its latest
    backtest evidence (trades, win rate, PnL, return)."""
    deployments = visible_to(user, Deployment.objects.all())
    if config_id is not None:
        deployments = deployments.filter(config_id=config_id)
    if mode:
        deployments = deployments.filter(account__mode=mode)
    perf = performance(deployments, by="config")
    configs = {c.pk: c for c in StrategyConfig.objects.filter(pk__in=perf).select_related("market")}
    rows = []
    for config_id_, p in sorted(perf.items()):
        c = configs[config_id_]
        rows.append({"config": c.pk, "config_name": c.name, "strategy_key": c.strategy_key, "symbol": c.market.symbol,
                     "timeframe": c.timeframe, "quote": c.market.quote, **p.as_dict()})
    return rows


# --- notices on a deployment's page ---------------------------------------------------------------
def risk_limits_set(deployment: Deployment, context=None) -> list[str]:
    """The limits the pre-trade check holds this deployment to, over its four scopes (global,
    user, account, deployment), as "<limit> (<scope>)"; empty when none is configured."""
    context = context or risk_context_for(deployment=deployment)
    return [f"{LIMITS[name][0]} ({scope.label})" for scope in context.scopes
            for name, value in scope.limits.items() if value is not None and name in LIMITS]


def risk_notices(context) -> list[dict]:
    """Kill switches tripped and manual overrides active at any of the deployment's scopes: they
    change what the check does, so the page says so where the orders are read."""
    notices = []
    for scope in context.scopes:
        if scope.kill_switch:
            how = "automatically" if scope.kill_switch["automatic"] else "by a person"
            notices.append({"code": "kill_switch", "level": "bad",
                            "message": f"Kill switch tripped {how} at {scope.label}: {scope.kill_switch['reason']}. "
                                       "No new entries until it is released (Risk page)."})
        for o in scope.overrides:
            name = LIMITS[o["limit"]][0] if o["limit"] in LIMITS else o["limit"].replace("_", " ")
            until = datetime.fromisoformat(o["expires_at"]).astimezone(dt_timezone.utc)
            notices.append({"code": "risk_override", "level": "warn",
                            "message": f"Risk override at {scope.label}: {name} = {format(Decimal(o['value']).normalize(), 'f')} until "
                                       f"{until:%Y-%m-%d %H:%M} UTC ({o['reason']})."})
    return notices


def deployment_notices(deployment: Deployment) -> list[dict]:
    """What a trader must know before reading the deployment's numbers: [{code, level, message}]."""
    notices = []
    config = deployment.config
    if deployment.data_stale_since:  # the engine's own judgement, set at its tick
        notices.append({"code": "stale_data", "level": "warn",
                        "message": f"Stale market data since {deployment.data_stale_since:%Y-%m-%d %H:%M} UTC: "
                                   f"{deployment.data_stale_reason}"})
    elif deployment.state != DeploymentState.STOPPED and not CandleCoverage.objects.filter(
            market_id=config.market_id, timeframe=config.timeframe).exists():
        notices.append({"code": "no_data", "level": "bad",
                        "message": f"No {config.timeframe} candles of {config.market.symbol} are stored: the engine "
                                   "has nothing to decide on. Download market data first (Market data page)."})
    if deployment.last_error:
        notices.append({"code": "tick_failed", "level": "bad",
                        "message": f"The last tick failed: {deployment.last_error}"})
    account = deployment.account
    if account.health in ("auth_failed", "error"):
        notices.append({"code": "account_" + account.health, "level": "bad",
                        "message": f"Account {account.name}: {account.get_health_display()}. {account.last_error}"})
    context = risk_context_for(deployment=deployment)
    notices.extend(risk_notices(context))
    if deployment.state != DeploymentState.STOPPED and not risk_limits_set(deployment, context):
        notices.append({"code": "no_risk_limits", "level": "warn",
                        "message": "No risk limits configured at any scope (global, user, account, deployment): the "
                                   "pre-trade check approves every entry without limiting it. Set limits on the Risk "
                                   "page."})
    return notices


def tracking_error(deployment: Deployment) -> dict | None:
    """Live against a replay of the same period (trading.services.tracking, the one computation
    graduation reads too); None before the deployment has acted on a bar."""
    return deployment_tracking_error(deployment)


def closed_trade_curves(tracking: dict | None, capital: Decimal) -> dict | None:
    """Capital plus the cumulative PnL of closed trades, at each exit: live (its own trades) and
    the replay of the same period (the backtest of exactly those bars). Built from the tracking
    error's trade lists, so the chart and the tracking table are one computation. Times epoch ms,
    values in the quote currency; None before the deployment acted on a bar."""
    if tracking is None:
        return None
    live = [(p["exit_live"], p["pnl_live"]) for p in tracking["pairs"]]
    live += [(t["exit_time"], t["pnl"]) for t in tracking["extra"]]
    replayed = [(p["exit_replay"], p["pnl_replay"]) for p in tracking["pairs"]]
    replayed += [(t["exit_time"], t["pnl"]) for t in tracking["missed"]]
    start = tracking["period"]["start"]

    def curve(points):
        times, values, total = [start], [float(capital)], float(capital)
        for t, pnl in sorted(points):
            total += pnl
            times.append(int(t))
            values.append(round(total, 8))
        return {"time": times, "equity": values}

    return {"live": curve(live), "replay": curve(replayed)}


def open_orders(deployment: Deployment) -> QuerySet[Order]:
    return deployment.orders.filter(status__in=OPEN_STATUSES)


def overview_totals(deployments: list[Deployment], positions: list[Position]) -> dict:
    """Totals for the overview's cards. Equity sums the latest snapshots of the deployments that
    have one; `without_equity` counts those that do not (shown, never guessed)."""
    running = [d for d in deployments if d.state != DeploymentState.STOPPED]
    with_equity = [d for d in running if d.latest_equity is not None]
    quotes = {d.config.market.quote for d in running}
    return {"equity": sum((d.latest_equity for d in with_equity), ZERO) if with_equity else None,
            "capital": sum((d.capital for d in running), ZERO),
            "without_equity": len(running) - len(with_equity),
            "active": sum(d.state == DeploymentState.ACTIVE for d in deployments),
            "paused": sum(d.state == DeploymentState.PAUSED for d in deployments),
            "stopped": sum(d.state == DeploymentState.STOPPED for d in deployments),
            "unrealised_pnl": sum((p.unrealised_pnl for p in positions), ZERO),
            "open_positions": len(positions),
            "quote": quotes.pop() if len(quotes) == 1 else ("mixed" if quotes else "")}


def snapshots_visible(user) -> QuerySet[PortfolioSnapshot]:
    deployments = visible_to(user, Deployment.objects.all())
    accounts = visible_to(user, ExchangeAccount.objects.all())
    return PortfolioSnapshot.objects.filter(Q(deployment__in=deployments) |
                                            Q(deployment__isnull=True, account__in=accounts))
