"""What the risk limits would have done to a backtest: its bars replayed through trading's paper
loop (the engine core, the backtest's fill rules) with the pre-trade check as the engine's hook.

Off by default: a backtest run itself never changes (the engine and apps.backtests are
untouched); this is asked for on a finished run (API `GET /api/v1/risk/backtest/<run id>/`,
`manage.py risk backtest --run ID`) and writes nothing. The limits are the run owner's as they
stand now (the global and user profiles, active overrides applied); the run is one deployment
on its own, with the run's starting cash as equity. Simulated: every sizing limit, open
positions, orders per minute, daily loss and drawdown (a breach halts entries for the rest of
the run, as the kill switch would until a person releases it) and the adaptive throttle. Not
simulated (said in the result): correlation with other positions, the loss-streak cooldown,
other deployments' exposure, and kill switches tripped by people.
"""
from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.utils import timezone

from apps.backtests.services import first_traded_index, load_bars, spec_for_run
from apps.trading.services.replay import replay

from .rules import OrderIntent, RiskContext, evaluate
from .selectors import Targets, adaptive_throttle, build_scopes

NOT_SIMULATED = ["correlation with other positions", "loss-streak cooldown", "other deployments' exposure",
                 "kill switches tripped by people"]


def _dec(x) -> Decimal:
    return Decimal(repr(float(x)))


def backtest_with_limits(run) -> dict:
    """Replay `run` with its owner's limits; compare with the run as stored."""
    spec = spec_for_run(run)
    bars = load_bars(run.market, spec, warmup=spec.warmup)  # the warm-up before the start, as the run read it
    first = first_traded_index(bars, spec)  # the engine starts flat there, as the run did
    template = build_scopes(Targets(user_id=run.owner_id).keys(), now=timezone.now(),
                            names={f"user:{run.owner_id}": run.owner.get_username()})
    for s in template:  # the limits only: usage comes from the simulation
        s.kill_switch, s.positions, s.pending, s.orders_last_minute = None, {}, {}, 0
    symbol = run.market.symbol
    step = _dec(spec.engine.amount_step) if spec.engine.amount_step else None
    times = bars.time.tolist()
    book = {"peak": _dec(spec.engine.cash), "day": None, "day_start": _dec(spec.engine.cash), "halted": None,
            "recent": []}
    outcomes, by_limit, examples = Counter(), Counter(), []

    def hook(intent, state):
        if intent.kind != "entry":
            outcomes["exit"] += 1
            return intent  # exits are never blocked
        at = datetime.fromtimestamp(times[intent.bar_index] / 1000, tz=UTC)
        equity = _dec(state.equity)
        book["peak"] = max(book["peak"], equity)
        if book["day"] != at.date():
            book["day"], book["day_start"] = at.date(), equity
        book["recent"] = [t for t in book["recent"] if t > at - timedelta(seconds=60)]
        price = _dec(intent.reference_price)
        held = {symbol: _dec(state.size) * price} if state.side else {}
        for s in template:
            s.equity, s.peak_equity, s.day_start_equity = equity, book["peak"], book["day_start"]
            s.positions, s.orders_last_minute = held, len(book["recent"])
        ctx = RiskContext(now=at, scopes=template, amount_step=step, deployment_equity=equity,
                          deployment_drawdown_pct=(book["peak"] - equity) / book["peak"] * 100)
        ctx.adaptive = adaptive_throttle(ctx)
        check = OrderIntent(deployment_id=None, account_id=None, owner_id=run.owner_id, symbol=symbol,
                            side=intent.direction, amount=_dec(intent.estimated_amount), price=price,
                            stop_price=_dec(intent.stop_loss) if intent.stop_loss is not None else None,
                            source="backtest")
        if book["halted"]:
            verdict_outcome, reasons = "rejected", [{"limit": "kill_switch", "message": book["halted"]}]
            amount = Decimal(0)
        else:
            verdict = evaluate(check, ctx)
            verdict_outcome, reasons, amount = verdict.outcome, verdict.reasons, verdict.amount
            if verdict.breaches:
                book["halted"] = f"halted after: {verdict.breaches[0]['message']}"
        outcomes[verdict_outcome] += 1
        for r in reasons:
            by_limit[r.get("limit") or "none"] += 1
        if verdict_outcome != "approved" and len(examples) < 25:
            examples.append({"time": at.isoformat(), "outcome": verdict_outcome, "requested": str(check.amount),
                             "allowed": str(amount), "reasons": [r["message"] for r in reasons]})
        if verdict_outcome == "rejected" or amount <= 0:
            return None
        book["recent"].append(at)
        return intent.resize(float(amount)) if verdict_outcome == "resized" else intent

    result = replay(bars, spec.strategy_key, spec.parameters, spec.engine, hook=hook, symbol=symbol,
                    start_index=first)
    if result.open_position:  # bar indices of the run's range, as the stored run's
        result.open_position["entry_index"] -= first
    cash = float(spec.engine.cash)
    return {
        "run": run.pk, "limits_of": [s.label for s in template],
        "without_limits": {"trades": (run.metrics or {}).get("trade_count"), "final_equity": run.final_equity,
                           "total_return": (run.final_equity / cash - 1) if run.final_equity is not None else None},
        "with_limits": {"trades": len(result.trades), "final_equity": result.final_equity,
                        "total_return": result.final_equity / cash - 1, "open_position": result.open_position},
        "entries": {k: outcomes[k] for k in ("approved", "resized", "rejected")}, "exits": outcomes["exit"],
        "by_limit": dict(by_limit), "halted": book["halted"], "examples": examples,
        "not_simulated": NOT_SIMULATED,
    }
