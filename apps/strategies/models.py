"""Strategy configurations: a library strategy, its parameters, a market and timeframe, a stage.

Strategies themselves are code (quant/strategies), registered by key; a StrategyConfig
is one concrete, parameterised use of a strategy that can be backtested, trained, graduated
and deployed. It carries the full execution settings (apps/strategies/execution.py), so a config
promoted to paper trades with the stops and costs its evidence assumed.
"""
from __future__ import annotations

from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db import models

from tradepulse.core.models import OwnedModel

from .execution import ExecutionSettings

from quant.strategies import UnknownStrategy, get_strategy
from quant.strategies.base import ParameterError
from quant.timeframes import check_grid_timeframe


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
        check_grid_timeframe(value)
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


class EvidenceSource(models.TextChoices):
    BACKTEST = "backtest", "Backtest"
    TRAINING_OOS = "training_oos", "Training: walk-forward out-of-sample"
    HOLDOUT = "holdout", "Training: hold-out"
    PAPER = "paper", "Paper trading"
    TESTNET = "testnet", "Testnet"
    LIVE = "live", "Live"


class ConfigEvidence(models.Model):
    """One measured result of a config: where and when it was measured, on which candles and
    code, and the figures graduation decides on, as typed columns (no digging in JSON).

    Backtest and training rows are written when a config is created from them; paper, testnet
    and live rows by trading. `run` links the run (or deployment) that measured it.
    """

    config = models.ForeignKey(StrategyConfig, on_delete=models.CASCADE, related_name="evidence")
    source = models.CharField(max_length=16, choices=EvidenceSource.choices)
    period_start = models.DateTimeField(help_text="Open of the first bar measured (UTC).")
    period_end = models.DateTimeField(help_text="End of the last bar measured (UTC), exclusive.")
    fingerprint = models.CharField(max_length=64, blank=True, help_text="SHA-256 of the candles measured on.")
    code_version = models.CharField(max_length=64, blank=True,
                                    help_text="Code version of the strategy and engine that measured it.")
    trades = models.PositiveIntegerField(default=0, help_text="Closed trades in the period.")
    sharpe = models.FloatField(null=True, blank=True,
                               help_text="Annualised Sharpe ratio over the period (365-day year); empty = undefined.")
    max_drawdown = models.FloatField(null=True, blank=True,
                                     help_text="Deepest fall below a running high, a fraction (0.2 = 20 %).")
    total_return = models.FloatField(null=True, blank=True, help_text="Return over the period, a fraction.")
    oos_sharpe = models.FloatField(null=True, blank=True,
                                   help_text="Training only: Sharpe of the chained walk-forward out-of-sample windows.")
    dsr = models.FloatField(null=True, blank=True,
                            help_text="Training only: deflated Sharpe ratio, a probability 0–1 over every trial tried.")
    pbo = models.FloatField(null=True, blank=True,
                            help_text="Training only: probability of backtest overfitting (CSCV), 0–1.")
    run_type = models.ForeignKey(ContentType, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    run_id = models.PositiveBigIntegerField(null=True, blank=True)
    run = GenericForeignKey("run_type", "run_id")
    trial = models.PositiveIntegerField(null=True, blank=True, help_text="Training trial number, if from training.")
    metrics = models.JSONField(default=dict, blank=True, help_text="Every figure measured over the period.")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["config", "-period_end", "source"]
        verbose_name_plural = "config evidence"
        indexes = [models.Index(fields=["config", "source", "-period_end"], name="evidence_config_source_end"),
                   models.Index(fields=["source", "-created_at"], name="evidence_source_created")]

    def __str__(self) -> str:
        return f"{self.get_source_display()} evidence for config {self.config_id}"

    def clean(self):
        if self.period_start and self.period_end and self.period_end <= self.period_start:
            raise ValidationError({"period_end": "The period must end after it starts."})

    @property
    def run_url(self) -> str | None:
        """The dashboard page of the run that measured it (runs define get_absolute_url)."""
        if self.run_type_id is None or self.run_id is None:
            return None
        model = self.run_type.model_class()
        return model(pk=self.run_id).get_absolute_url() if hasattr(model, "get_absolute_url") else None
