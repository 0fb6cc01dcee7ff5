"""The one pre-trade check every order intent passes (engine loop, manual action, API, backtest).

Interface (stable; the trading loop and manual actions call it):

    verdict = risk_check(intent=OrderIntent(...), context=None)

`verdict.outcome` is "approved", "resized" or "rejected"; `verdict.amount` is the amount that may be
sent (equal to the intent's when approved, smaller when resized, 0 when rejected); `verdict.reasons`
names each limit that acted: its name, value and the scope that bound it. `verdict.as_dict()` is
what is stored on the order (`Order.verdict`) and audited.

`context` is a `RiskContext` (selectors.risk_context builds one from the database; the loop may
build it once per tick and pass it in). With None the check loads it itself. The rules
themselves are in rules.py (pure, no database).
"""
from __future__ import annotations

from . import selectors, services
from .rules import LIMITS, OrderIntent, RiskContext, ScopeState, Verdict, evaluate

__all__ = ["LIMITS", "OrderIntent", "RiskContext", "ScopeState", "Verdict", "evaluate", "risk_check"]


def risk_check(*, intent: OrderIntent, context: RiskContext | None = None) -> Verdict:
    """Check one intent. With no context it is loaded from the database (positions, open orders,
    portfolio snapshots, profiles, overrides, kill switches). A rejection or a resize is audited;
    a daily-loss or drawdown breach trips the kill switch at the breached scope and raises an
    alert (not for backtests, whose context is simulated)."""
    if context is None:
        context = selectors.risk_context(intent)
    verdict = evaluate(intent, context)
    if intent.source != "backtest":
        services.verdict_record(intent=intent, verdict=verdict, context=context)
    return verdict
