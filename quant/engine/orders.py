"""The order boundary: float engine numbers → Decimal prices and amounts on a market's grid.

The engine computes in float64; an exchange takes decimal strings on its own grid (tick
``price_step``, lot ``amount_step``) and refuses orders below its minimum amount or
notional. Convert once, here, when an intent becomes a live order:

    rules = MarketRules.from_steps("0.01", "0.0001", min_amount="0.0001", min_notional="5")
    order = rules.order(intent.direction, amount=intent.estimated_amount, price=intent.reference_price)
    order.amount, order.price        # Decimal on the grid, or MarketRuleError naming the rule

Rounding (the engine's rule, ``quant.engine.core.round_level``): amounts always round DOWN
(never more than the budget); a limit/stop price of a SELL rounds DOWN and of a BUY rounds
UP — so a long's protective sell levels round down and a short's buy levels round up, a
stop is never tighter than asked and a sell never asks more than the level.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, InvalidOperation

__all__ = ["MarketRuleError", "MarketRules", "Order", "to_decimal", "round_to_step"]


class MarketRuleError(ValueError):
    """An order breaks a market rule (below the minimum amount or notional, bad number)."""


def to_decimal(value, name: str = "value") -> Decimal:
    """``value`` (float, int, str or Decimal) as a finite Decimal. Floats go through their
    shortest repr, so ``0.1`` becomes ``Decimal("0.1")``, not the binary expansion."""
    if isinstance(value, bool):
        raise MarketRuleError(f"{name}: expected a number, got {value!r}")
    try:
        result = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        raise MarketRuleError(f"{name}: expected a number, got {value!r}") from None
    if not result.is_finite():
        raise MarketRuleError(f"{name}: expected a finite number, got {value!r}")
    return result


def round_to_step(value, step, *, up: bool = False) -> Decimal:
    """``value`` rounded DOWN (or ``up``) to a multiple of ``step``; step 0 = unchanged."""
    value, step = to_decimal(value), to_decimal(step, "step")
    if step < 0:
        raise MarketRuleError(f"step: must be >= 0, got {step}")
    if step == 0:
        return value
    units = (value / step).to_integral_value(rounding=ROUND_CEILING if up else ROUND_FLOOR)
    return (units * step).quantize(step) if step.as_tuple().exponent < 0 else units * step


@dataclass(frozen=True)
class Order:
    """A market-valid order: ``direction`` "buy"/"sell", Decimal ``amount`` and ``price``."""

    direction: str
    amount: Decimal
    price: Decimal

    @property
    def notional(self) -> Decimal:
        return self.amount * self.price


@dataclass(frozen=True)
class MarketRules:
    """A market's grid and minimums as Decimals (0 = no rule)."""

    price_step: Decimal = Decimal(0)
    amount_step: Decimal = Decimal(0)
    min_amount: Decimal = Decimal(0)
    min_notional: Decimal = Decimal(0)

    @classmethod
    def from_steps(cls, price_step=0, amount_step=0, *, min_amount=None, min_notional=None) -> "MarketRules":
        """From the market's tick, lot step and limits (None = no rule), e.g. the
        ``price_step``, ``amount_step`` and ``limit("amount"|"cost", "min")`` of a stored
        market."""
        values = [to_decimal(v or 0, n) for v, n in ((price_step, "price_step"), (amount_step, "amount_step"),
                                                     (min_amount, "min_amount"), (min_notional, "min_notional"))]
        for value, name in zip(values, ("price_step", "amount_step", "min_amount", "min_notional")):
            if value < 0:
                raise MarketRuleError(f"{name}: must be >= 0, got {value}")
        return cls(*values)

    def engine_settings(self) -> dict:
        """The EngineConfig fields these rules set: price_step, amount_step, min_amount,
        min_notional (floats), so backtests trade on the same grid as live orders."""
        return {"price_step": float(self.price_step), "amount_step": float(self.amount_step),
                "min_amount": float(self.min_amount), "min_notional": float(self.min_notional)}

    def price(self, price, direction: str) -> Decimal:
        """A price on the tick: a sell rounds DOWN, a buy rounds UP."""
        if direction not in ("buy", "sell"):
            raise MarketRuleError(f"direction: expected 'buy' or 'sell', got {direction!r}")
        value = to_decimal(price, "price")
        if value <= 0:
            raise MarketRuleError(f"price: must be positive, got {value}")
        return round_to_step(value, self.price_step, up=direction == "buy")

    def amount(self, amount) -> Decimal:
        """An amount on the lot step, rounded DOWN."""
        value = to_decimal(amount, "amount")
        if value <= 0:
            raise MarketRuleError(f"amount: must be positive, got {value}")
        return round_to_step(value, self.amount_step)

    def order(self, direction: str, *, amount, price) -> Order:
        """The order rounded to the grid; MarketRuleError when it is below the minimum
        amount or notional after rounding (the message names the rule and both values)."""
        rounded_price = self.price(price, direction)
        rounded_amount = self.amount(amount)
        if rounded_amount <= 0 or rounded_amount < self.min_amount:
            raise MarketRuleError(f"amount {rounded_amount} is below the market minimum {self.min_amount}")
        notional = rounded_amount * rounded_price
        if notional < self.min_notional:
            raise MarketRuleError(f"notional {notional} is below the market minimum {self.min_notional}")
        return Order(direction, rounded_amount, rounded_price)
