"""Backtest serializers: the API's and the live events' payloads are the same."""
from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.marketdata.models import Market
from apps.strategies.execution import EXECUTION_FIELDS
from apps.strategies.models import StrategyConfig
from apps.strategies.serializers import ExecutionSettingsSerializer
from tradepulse.core.api import DateTimeField, ScopedPrimaryKeyRelatedField

from .models import BacktestRun, BacktestTrade
from .selectors import COMPARE_METRICS, run_warnings


class BacktestRunSerializer(serializers.ModelSerializer):
    market_symbol = serializers.CharField(source="market.symbol", read_only=True)
    exchange = serializers.CharField(source="market.exchange.name", read_only=True)
    owner = serializers.CharField(source="owner.username", read_only=True)
    duration_s = serializers.FloatField(read_only=True, allow_null=True)
    warnings = serializers.SerializerMethodField(
        help_text="[{code, message}]: short period, few or no closed trades, only an open position, "
                  "warm-up not stored before the start (short_warmup).")

    class Meta:
        model = BacktestRun
        fields = ["id", "name", "owner", "state", "progress", "message", "error", "error_code", "strategy_key",
                  "parameters", "config", "market", "market_symbol", "exchange", "timeframe", "start", "end",
                  *EXECUTION_FIELDS, "allow_gaps", "candle_count", "fingerprint", "code_version", "metrics", "timings",
                  "final_equity", "open_position", "skipped_entries", "gaps", "warmup_bars", "warmup_missing", "created_at", "started_at",
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
    start = DateTimeField()
    end = DateTimeField()
    allow_gaps = serializers.BooleanField(required=False, default=False)


class BacktestTradeSerializer(serializers.ModelSerializer):
    class Meta:
        model = BacktestTrade
        fields = ["number", "side", "entry_time", "exit_time", "entry_price", "exit_price", "size", "fees", "pnl",
                  "return_pct", "exit_reason"]


# --- query parameters and chart payloads (tradepulse.core.api.query_params reads the queries) ------

class EquityQuerySerializer(serializers.Serializer):
    max_points = serializers.IntegerField(required=False, default=2000, min_value=10, max_value=20000,
                                          help_text="At most this many points (10-20,000).")


class EquitySeriesSerializer(serializers.Serializer):
    time = serializers.ListField(child=serializers.IntegerField(), help_text="Epoch ms of each point.")
    equity = serializers.ListField(child=serializers.FloatField())
    drawdown = serializers.ListField(child=serializers.FloatField(), help_text="Fraction below the running peak (≤ 0).")
    points = serializers.IntegerField()
    bars = serializers.IntegerField()


class PriceMarkerSerializer(serializers.Serializer):
    number = serializers.IntegerField()
    side = serializers.CharField()
    entry_time = serializers.DateTimeField()
    exit_time = serializers.DateTimeField()
    entry_price = serializers.FloatField()
    exit_price = serializers.FloatField()
    pnl = serializers.FloatField()
    exit_reason = serializers.CharField()


class PriceSeriesSerializer(serializers.Serializer):
    timeframe = serializers.CharField()
    time = serializers.ListField(child=serializers.IntegerField())
    open = serializers.ListField(child=serializers.FloatField())
    high = serializers.ListField(child=serializers.FloatField())
    low = serializers.ListField(child=serializers.FloatField())
    close = serializers.ListField(child=serializers.FloatField())
    trades = PriceMarkerSerializer(many=True)


class CompareQuerySerializer(serializers.Serializer):
    ids = serializers.RegexField(r"^\s*\d{1,18}\s*(,\s*\d{1,18}\s*)*,?$", help_text="Comma-separated run ids, e.g. 3,7.",
                                 error_messages={"invalid": "Give comma-separated run ids, e.g. ?ids=3,7."})
    rank_by = serializers.ChoiceField(choices=COMPARE_METRICS, required=False, default="sharpe")

    def validate_ids(self, value) -> list[int]:
        ids = sorted({int(x) for x in value.split(",") if x.strip()})
        if len(ids) < 2:
            raise serializers.ValidationError("Give at least two run ids to compare, e.g. ?ids=3,7.")
        return ids


class ExportQuerySerializer(serializers.Serializer):
    what = serializers.ChoiceField(choices=["trades", "metrics"], required=False, default="trades")
