"""Backtest runs, their trades and equity curves.

A run records everything needed to reproduce it: strategy and parameters, market, timeframe,
range, execution settings (costs, sizing, stops: apps/strategies/execution.py), a fingerprint of
the candles it read and the version of the code that computed it.
"""
from __future__ import annotations

import zlib

import numpy as np
from django.db import models
from django.urls import reverse

from apps.strategies.execution import ExecutionSettings, Sizing  # noqa: F401  (Sizing: re-exported)
from tradepulse.core.jobs import Job


class BacktestRun(Job, ExecutionSettings):
    name = models.CharField(max_length=150, blank=True)
    strategy_key = models.CharField(max_length=50, db_index=True)
    parameters = models.JSONField(default=dict, blank=True)
    config = models.ForeignKey("strategies.StrategyConfig", null=True, blank=True, on_delete=models.SET_NULL,
                               related_name="backtests")
    market = models.ForeignKey("marketdata.Market", on_delete=models.PROTECT, related_name="backtests")
    timeframe = models.CharField(max_length=4)
    start = models.DateTimeField(help_text="First bar's open time (UTC), inclusive.")
    end = models.DateTimeField(help_text="End of the range (UTC), exclusive.")

    allow_gaps = models.BooleanField(default=False)

    candle_count = models.PositiveIntegerField(default=0)
    fingerprint = models.CharField(max_length=64, blank=True,
                                   help_text="SHA-256 of the candles read (the warm-up before the start included).")
    code_version = models.CharField(max_length=64, blank=True,
                                    help_text="SHA-256 of the strategy's and the engine's source that computed the "
                                              "result (quant/strategies/provenance.py says what is hashed).")
    metrics = models.JSONField(default=dict, blank=True)
    timings = models.JSONField(default=dict, blank=True)
    final_equity = models.FloatField(null=True, blank=True)
    open_position = models.JSONField(null=True, blank=True)
    skipped_entries = models.PositiveIntegerField(default=0)
    gaps = models.JSONField(default=list, blank=True, help_text="Missing intervals inside the range, if allowed.")
    warmup_bars = models.PositiveIntegerField(
        default=0, help_text="Bars of history the strategy read before the first traded bar (quant.strategies.warmup: "
                             "indicators full and, for recursive ones, converged).")
    warmup_missing = models.PositiveIntegerField(
        default=0, help_text="Warm-up bars not stored before the start: that many first bars of the range completed "
                             "the warm-up and did not trade.")

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["owner", "-created_at"])]

    def get_absolute_url(self) -> str:
        return reverse("dashboard:backtest-detail", args=[self.pk])

    def __str__(self) -> str:
        return self.name or f"Backtest {self.pk} {self.strategy_key} {self.timeframe}"


class ExitReason(models.TextChoices):
    SIGNAL = "signal", "Signal"
    STOP_LOSS = "stop_loss", "Stop-loss"
    TAKE_PROFIT = "take_profit", "Take-profit"
    TRAILING_STOP = "trailing_stop", "Trailing stop"


class BacktestTrade(models.Model):
    run = models.ForeignKey(BacktestRun, on_delete=models.CASCADE, related_name="trades")
    number = models.PositiveIntegerField()
    side = models.CharField(max_length=5)
    entry_time = models.DateTimeField()
    exit_time = models.DateTimeField()
    entry_price = models.FloatField()
    exit_price = models.FloatField()
    size = models.FloatField()
    fees = models.FloatField()
    pnl = models.FloatField()
    return_pct = models.FloatField(help_text="pnl / (size × entry price + entry fee), as a fraction.")
    exit_reason = models.CharField(max_length=16, choices=ExitReason.choices)

    class Meta:
        ordering = ["run", "number"]
        constraints = [models.UniqueConstraint(fields=["run", "number"], name="backtest_trade_unique_number")]


class EquityCurve(models.Model):
    """Equity at every bar's close, stored compactly (zlib-compressed float64)."""

    run = models.OneToOneField(BacktestRun, on_delete=models.CASCADE, related_name="equity_curve")
    start_ms = models.BigIntegerField(help_text="Open time of the first bar.")
    times = models.BinaryField(help_text="zlib-compressed int64 open times (bars may have gaps).")
    values = models.BinaryField(help_text="zlib-compressed float64 equity at each close.")
    count = models.PositiveIntegerField()

    @classmethod
    def pack(cls, run, time: np.ndarray, equity: np.ndarray) -> EquityCurve:
        return cls(run=run, start_ms=int(time[0]) if len(time) else 0, count=len(equity),
                   times=zlib.compress(np.diff(time, prepend=time[:1]).astype(np.int64).tobytes(), 1),
                   values=zlib.compress(np.asarray(equity, dtype=np.float64).tobytes(), 1))

    def unpack(self) -> tuple[np.ndarray, np.ndarray]:
        deltas = np.frombuffer(zlib.decompress(bytes(self.times)), dtype=np.int64)
        time = np.cumsum(deltas) if len(deltas) else deltas
        if len(time):
            time = time - time[0] + self.start_ms
        return time, np.frombuffer(zlib.decompress(bytes(self.values)), dtype=np.float64)
