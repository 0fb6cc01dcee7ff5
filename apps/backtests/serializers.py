"""Backtest serializers: the API's and the live events' payloads are the same."""
from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.marketdata.models import Market
from apps.strategies.execution import EXECUTION_FIELDS
from apps.strategies.models import StrategyConfig
from apps.strategies.serializers import ExecutionSettingsSerializer
from tradepulse.core.api import ScopedPrimaryKeyRelatedField

from .models import BacktestRun, BacktestTrade
from .selectors import run_warnings


class BacktestRunSerializer(serializers.ModelSerializer):
    market_symbol = serializers.CharField(source="market.symbol", read_only=True)
    exchange = serializers.CharField(source="market.exchange.name", read_only=True)
    owner = serializers.CharField(source="owner.username", read_only=True)
    duration_s = serializers.FloatField(read_only=True)
    warnings = serializers.SerializerMethodField(
        help_text="[{code, message}]: short period, few or no closed trades, only an open position.")

    class Meta:
        model = BacktestRun
        fields = ["id", "name", "owner", "state", "progress", "message", "error", "error_code", "strategy_key",
                  "parameters", "config", "market", "market_symbol", "exchange", "timeframe", "start", "end",
                  *EXECUTION_FIELDS, "allow_gaps", "candle_count", "fingerprint", "code_version", "metrics", "timings",
                  "final_equity", "open_position", "skipped_entries", "gaps", "created_at", "started_at",
                  "finished_at", "duration_s", "warnings"]
        read_only_fields = fields

    @extend_schema_field(serializers.ListField(child=serializers.DictField()))
    def get_warnings(self, run) -> list[dict]:
        return run_warnings(run)


# The execution settings' input fields, derived from the one model definition.
EngineFieldsSerializer = ExecutionSettingsSerializer


class BacktestCreateSerializer(ExecutionSettingsSerializer):
    """What a user sends to start a backtest. Validation beyond shapes happens in the service."""

    name = serializers.CharField(required=False, allow_blank=True, max_length=150)
    strategy_key = serializers.CharField(required=False)
    parameters = serializers.DictField(required=False)
    config = ScopedPrimaryKeyRelatedField(queryset=StrategyConfig.objects.all(), required=False, allow_null=True)
    market = ScopedPrimaryKeyRelatedField(queryset=Market.objects.all())
    timeframe = serializers.CharField()
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    allow_gaps = serializers.BooleanField(required=False, default=False)


class BacktestTradeSerializer(serializers.ModelSerializer):
    class Meta:
        model = BacktestTrade
        fields = ["number", "side", "entry_time", "exit_time", "entry_price", "exit_price", "size", "fees", "pnl",
                  "return_pct", "exit_reason"]
