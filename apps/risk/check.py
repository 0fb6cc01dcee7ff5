"""The one pre-trade check every order intent passes (engine loop, manual action, API).

Interface (stable; the trading loop and manual actions call it):

    verdict = risk_check(intent=OrderIntent(...), context=None)

`verdict.outcome` is "approved", "resized" or "rejected"; `verdict.amount` is the amount that may be
sent (equal to the intent's when approved, smaller when resized, 0 when rejected); `verdict.reasons`
names each limit that acted: its name, value and the scope that bound it. `verdict.as_dict()` is
what is stored on the order (`Order.verdict`) and audited.

Until the risk profiles land, this approves every intent and says so in the reason, so the page
shows "no risk limits are configured" instead of pretending a check ran.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from decimal import Decimal


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
    reasons: list[dict] = field(default_factory=list)  # {"limit", "value", "scope", "message"}

    @property
    def approved(self) -> bool:
        return self.outcome != "rejected" and self.amount > 0

    def as_dict(self) -> dict:
        data = asdict(self)
        data["amount"] = str(self.amount)
        data["approved"] = self.approved
        return data


def risk_check(*, intent: OrderIntent, context: dict | None = None) -> Verdict:
    return Verdict(outcome="approved", amount=intent.amount,
                   reasons=[{"limit": None, "value": None, "scope": None,
                             "message": "No risk limits are configured yet: approved without a check."}])
