"""Execution settings: the one definition of how a strategy's signals are traded.

Capital, costs, sizing, protective exits and short permission decide a result as much as the
strategy's parameters do. They are declared once here, as an abstract model that BacktestRun,
TrainingRun and StrategyConfig (and later Deployment) inherit, so a config carries exactly the
settings its evidence was measured with. The API's serializer fields are derived from these
model fields (apps/strategies/serializers.py), the engine's configuration is built from them
(`engine_config()`), and `EXECUTION_FIELDS` names them for copying between rows.

Units: fractions are of a price or of equity, never percents (0.001 = 0.1 %). Bounds:

    cash           > 0 and <= 1e12, quote currency
    fee            0 … 0.05 (5 %) of notional, per side
    slippage       0 … 0.05 (5 %) of the price, per fill
    size_value     > 0; <= 1 for "fraction" and "risk" sizing, <= 1e12 quote currency for "notional"
    amount_step    0 … 1e12, base currency (0 = no rounding)
    min_amount     0 … 1e12, base currency
    stop_loss      0 < v < 1 (a 100 % stop is no stop), or empty = off
    take_profit    0 < v <= 10 (1000 %), or empty = off
    trailing_stop  0 < v < 1, or empty = off
    price_step     0 … 1e12, quote currency (the market's tick; 0 = no rounding)
    min_notional   0 … 1e12, quote currency (0 = none)

Every number has an upper bound: an unbounded one (1e308) overflows the engine's products to
infinity, and a result holding Infinity cannot be stored (it is not valid JSON). MAX_AMOUNT,
the cash bound, is far above any real balance, order or tick in any currency.

The engine checks its own invariants again (quant/engine/config.py); these bounds are the
stricter, human ones: a fee above 5 % is a typo (0.1 meant as 0.1 %), not a market.
When the engine grows a setting, add it here and it reaches every model, serializer and copy
at once (tests/strategies/test_execution_settings.py checks the two agree).
"""
from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.validators import BaseValidator, MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.deconstruct import deconstructible

from quant.engine import EngineConfig
from quant.strategies import UnknownStrategy, get_strategy


@deconstructible
class AboveValidator(BaseValidator):
    """The value must be strictly greater than the limit."""

    message = "Ensure this value is greater than %(limit_value)s."
    code = "min_value"

    def compare(self, a, b):
        return a <= b


@deconstructible
class BelowValidator(BaseValidator):
    """The value must be strictly less than the limit."""

    message = "Ensure this value is less than %(limit_value)s."
    code = "max_value"

    def compare(self, a, b):
        return a >= b


class Sizing(models.TextChoices):
    FRACTION = "fraction", "Fraction of equity"
    NOTIONAL = "notional", "Fixed notional"
    RISK = "risk", "Risk per trade (from the stop distance)"


MAX_COST = 0.05
MAX_AMOUNT = 1e12  # any amount, in base or quote currency (see the module docstring)


class ExecutionSettings(models.Model):
    """Capital, costs, sizing, exits and short permission (module docstring for units and bounds)."""

    cash = models.FloatField(
        default=10_000.0, validators=[AboveValidator(0), MaxValueValidator(MAX_AMOUNT)],
        help_text="Starting equity in quote currency (e.g. USDT).")
    fee = models.FloatField(
        default=0.001, validators=[MinValueValidator(0), MaxValueValidator(MAX_COST)],
        help_text="Fraction of notional charged on entry and on exit (0.001 = 0.1 %); 0 to 0.05.")
    slippage = models.FloatField(
        default=0.0, validators=[MinValueValidator(0), MaxValueValidator(MAX_COST)],
        help_text="Fraction of the price added to buys and taken from sells (0.0005 = 0.05 %); 0 to 0.05.")
    sizing = models.CharField(
        max_length=10, choices=Sizing.choices, default=Sizing.FRACTION,
        help_text="fraction: spend size_value × equity; notional: spend size_value in quote currency; "
                  "risk: lose size_value × equity at the initial stop (needs a stop).")
    size_value = models.FloatField(
        default=1.0, validators=[AboveValidator(0), MaxValueValidator(MAX_AMOUNT)],
        help_text="For fraction and risk sizing a fraction of equity above 0 and at most 1 (0.01 = 1 %); "
                  "for notional sizing an amount in quote currency, at most 1e12.")
    amount_step = models.FloatField(
        default=0.0, validators=[MinValueValidator(0), MaxValueValidator(MAX_AMOUNT)],
        help_text="Order sizes are rounded down to this step, in base currency (0 = no rounding); at most 1e12.")
    min_amount = models.FloatField(
        default=0.0, validators=[MinValueValidator(0), MaxValueValidator(MAX_AMOUNT)],
        help_text="Entries smaller than this, in base currency after rounding, are skipped; at most 1e12.")
    stop_loss = models.FloatField(
        null=True, blank=True, validators=[AboveValidator(0), BelowValidator(1)],
        help_text="Fraction from the signal close (0.02 = 2 % below a long's entry signal); above 0 and "
                  "below 1; empty = no stop.")
    take_profit = models.FloatField(
        null=True, blank=True, validators=[AboveValidator(0), MaxValueValidator(10)],
        help_text="Fraction from the signal close (0.05 = 5 % above a long's entry signal); above 0 and at "
                  "most 10; empty = no target.")
    trailing_stop = models.FloatField(
        null=True, blank=True, validators=[AboveValidator(0), BelowValidator(1)],
        help_text="Fraction below the highest high since entry (above the lowest low for shorts); above 0 "
                  "and below 1; empty = off.")
    allow_short = models.BooleanField(
        default=False, help_text="Take the strategy's short entries; otherwise they are ignored.")
    price_step = models.FloatField(
        default=0.0, validators=[MinValueValidator(0), MaxValueValidator(MAX_AMOUNT)],
        help_text="The market's price tick, in quote currency: stop, trailing and target levels are rounded to "
                  "it the exchange's way (0 = no rounding); at most 1e12.")
    min_notional = models.FloatField(
        default=0.0, validators=[MinValueValidator(0), MaxValueValidator(MAX_AMOUNT)],
        help_text="The market's minimum order value, in quote currency: smaller entries are skipped (0 = none); "
                  "at most 1e12.")

    class Meta:
        abstract = True

    def execution_settings(self) -> dict:
        """The settings as a dict keyed by `EXECUTION_FIELDS` (what a copy to another row needs)."""
        return {name: getattr(self, name) for name in EXECUTION_FIELDS}

    def engine_config(self) -> EngineConfig:
        """The engine's configuration for these settings; ValueError names a field the engine refuses."""
        return EngineConfig(**self.execution_settings())

    def clean(self):
        super().clean()
        self.clean_execution_settings()

    def clean_execution_settings(self) -> None:
        """Rules between fields: fraction sizes at most 1; risk sizing needs a stop unless the
        row's strategy (`strategy_key`) sets its own stop prices. Raises ValidationError naming
        the field."""
        try:
            strategy = get_strategy(getattr(self, "strategy_key", None) or "")
        except UnknownStrategy:
            strategy = None  # the row's own clean() names an unknown strategy
        errors = {}
        if self.sizing in (Sizing.FRACTION, Sizing.RISK) and self.size_value is not None and self.size_value > 1:
            errors["size_value"] = (f"With {self.sizing} sizing the size is a fraction of equity above 0 and at most "
                                    f"1 (0.01 = 1 %), got {self.size_value!r}.")
        if (self.sizing == Sizing.RISK and self.stop_loss is None and self.trailing_stop is None
                and not getattr(strategy, "provides_stops", False)):
            errors["stop_loss"] = "Risk sizing needs a stop: set a stop-loss or a trailing stop."
        if not errors:
            try:
                self.engine_config()
            except (TypeError, ValueError) as exc:
                name = str(exc).split(":", 1)[0]
                errors[name if name in EXECUTION_FIELDS else "__all__"] = str(exc)
        if errors:
            raise ValidationError(errors)


EXECUTION_FIELDS: tuple[str, ...] = tuple(f.name for f in ExecutionSettings._meta.local_fields)
