"""Engine configuration: capital, costs, sizing and protective exits, validated on creation."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

SIZING_MODES = ("fraction", "notional", "risk")


def _fraction(name: str, value, *, upper: float = 1.0, allow_zero: bool = False,
              inclusive_upper: bool = False) -> None:
    """Raise ValueError unless ``value`` is a number in the allowed range."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name}: expected a finite number, got {value!r}")
    low_ok = value >= 0 if allow_zero else value > 0
    high_ok = value <= upper if inclusive_upper else value < upper
    if not (low_ok and high_ok):
        low = "0 <=" if allow_zero else "0 <"
        high = "<=" if inclusive_upper else "<"
        raise ValueError(f"{name}: {value!r} is outside {low} {name} {high} {upper}")


@dataclass(frozen=True)
class EngineConfig:
    """How the engine trades. Every fraction is of a price or of equity, never a percent.

    cash          starting equity in quote currency.
    fee           fraction of notional charged on entry AND on exit (0.001 = 0.1 %).
    slippage      fraction: buys fill at ``price * (1 + slippage)``, sells at ``price * (1 - slippage)``;
                  applies to every fill, including stop and take-profit exits.
    sizing        "fraction": spend ``size_value`` x equity (0 < v <= 1) on notional + entry fee;
                  "notional": spend ``size_value`` quote currency (capped at equity);
                  "risk": size so that hitting the initial stop loses ``size_value`` x equity
                  (0 < v <= 1) including both fees and slippage; capped at equity; needs a stop.
    amount_step   order size granularity; sizes are rounded DOWN so cost + fee fit the budget.
    min_amount    entries smaller than this (after rounding) are skipped and counted.
    stop_loss     fraction from the signal close (long stop = close x (1 - v)); None = off.
    take_profit   fraction from the signal close (long target = close x (1 + v)); None = off.
    trailing_stop fraction below the highest high since entry (above the lowest low for
                  shorts); None = off.
    allow_short   take short entries from the signals; otherwise they are ignored.
    price_step    the market's price tick; protective levels (stop, trailing stop,
                  take-profit) are rounded to it the exchange's way: a long's levels DOWN,
                  a short's UP (core.round_level). 0 = no rounding.
    min_notional  the market's minimum order value (quote currency); an entry whose size x
                  fill price is below it is skipped and counted. 0 = off.
    """

    cash: float = 10_000.0
    fee: float = 0.001
    slippage: float = 0.0
    sizing: str = "fraction"
    size_value: float = 1.0
    amount_step: float = 0.0
    min_amount: float = 0.0
    stop_loss: float | None = None
    take_profit: float | None = None
    trailing_stop: float | None = None
    allow_short: bool = False
    price_step: float = 0.0
    min_notional: float = 0.0

    def __post_init__(self) -> None:
        if isinstance(self.cash, bool) or not isinstance(self.cash, (int, float)) \
                or not math.isfinite(self.cash) or self.cash <= 0:
            raise ValueError(f"cash: must be a positive number, got {self.cash!r}")
        _fraction("fee", self.fee, allow_zero=True)
        _fraction("slippage", self.slippage, allow_zero=True)
        if self.sizing not in SIZING_MODES:
            raise ValueError(f"sizing: {self.sizing!r} is not one of {', '.join(SIZING_MODES)}")
        if self.sizing == "notional":
            _fraction("size_value", self.size_value, upper=math.inf)
        else:
            _fraction("size_value", self.size_value, inclusive_upper=True)
        _fraction("amount_step", self.amount_step, upper=math.inf, allow_zero=True)
        _fraction("min_amount", self.min_amount, upper=math.inf, allow_zero=True)
        _fraction("price_step", self.price_step, upper=math.inf, allow_zero=True)
        _fraction("min_notional", self.min_notional, upper=math.inf, allow_zero=True)
        for name in ("stop_loss", "trailing_stop"):
            if getattr(self, name) is not None:
                _fraction(name, getattr(self, name))
        if self.take_profit is not None:
            _fraction("take_profit", self.take_profit, upper=math.inf)
        if not isinstance(self.allow_short, bool):
            raise ValueError(f"allow_short: expected true or false, got {self.allow_short!r}")

    def as_array(self):
        """The float64 settings array of the compiled steps (``quant.engine.core.C_*``)."""
        from . import core

        def nan(value):
            return math.nan if value is None else float(value)

        return core.make_config(float(self.fee), float(self.slippage), core.SIZING_CODES[self.sizing],
                                float(self.size_value), float(self.amount_step), float(self.min_amount),
                                nan(self.stop_loss), nan(self.take_profit), nan(self.trailing_stop),
                                self.allow_short, float(self.price_step), float(self.min_notional))

    def to_dict(self) -> dict:
        """JSON-able dict of every field (round-trips through :meth:`from_dict`)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "EngineConfig":
        """Build from a dict, rejecting unknown keys by name; missing keys take defaults."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown engine setting(s): {', '.join(unknown)}")
        return cls(**data)
