"""Strategy configurations: a library strategy, its parameters, a market and timeframe, a stage.

Strategies themselves are code (quant/strategies), registered by key; a StrategyConfig
is one concrete, parameterised use of a strategy that can be backtested, trained, graduated
and deployed. It carries the full execution settings (apps/strategies/execution.py), so a config
promoted to paper trades with the stops and costs its evidence assumed.
"""
from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models

from tradepulse.core.models import OwnedModel

from .execution import ExecutionSettings

from quant.strategies import UnknownStrategy, get_strategy
from quant.strategies.base import ParameterError
from quant.timeframes import timeframe_ms


class Stage(models.TextChoices):
    DISCOVERY = "discovery", "Discovery"
    VALIDATION = "validation", "Validation"
    PAPER = "paper", "Paper"
    TESTNET = "testnet", "Testnet"
    LIVE = "live", "Live"
    RETIRED = "retired", "Retired"


class Source(models.TextChoices):
    MANUAL = "manual", "Manual"
    BACKTEST = "backtest", "Saved from a backtest"
    TRAINING = "training", "Training run"


def validate_timeframe(value: str) -> None:
    try:
        timeframe_ms(value)
    except (KeyError, ValueError) as exc:
        raise ValidationError(str(exc)) from None


class StrategyConfig(OwnedModel, ExecutionSettings):
    """A strategy's parameters with the execution settings (costs, sizing, stops, shorts) its
    results were measured with, on one market and timeframe, at a lifecycle stage."""

    name = models.CharField(max_length=120)
    strategy_key = models.CharField(max_length=50, db_index=True)
    market = models.ForeignKey("marketdata.Market", on_delete=models.PROTECT, related_name="strategy_configs")
    timeframe = models.CharField(max_length=4, validators=[validate_timeframe])
    parameters = models.JSONField(default=dict, blank=True)
    stage = models.CharField(max_length=12, choices=Stage.choices, default=Stage.DISCOVERY, db_index=True)
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.MANUAL)
    provenance = models.JSONField(default=dict, blank=True,
                                  help_text='Where it came from, e.g. {"backtest_run": 12} or {"training_run": 3, "trial": 41}.')
    metrics = models.JSONField(default=dict, blank=True,
                               help_text="Metrics it was chosen on (in-sample, out-of-sample, walk-forward).")
    notes = models.TextField(blank=True)
    code_version = models.CharField(
        max_length=64, blank=True,
        help_text="SHA-256 of the strategy's and the engine's source that produced the results it was created "
                  "from (quant/strategies/provenance.py says what is hashed).")

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["owner", "stage"])]

    def __str__(self) -> str:
        return f"{self.name} ({self.strategy_key} {self.timeframe})"

    @property
    def strategy(self):
        return get_strategy(self.strategy_key)

    def clean(self):
        super().clean()  # execution settings
        try:
            strategy = get_strategy(self.strategy_key)
        except UnknownStrategy as exc:
            raise ValidationError({"strategy_key": str(exc)}) from None
        try:
            self.parameters = strategy.validate_params(self.parameters or {})
        except ParameterError as exc:
            raise ValidationError({"parameters": str(exc)}) from None
