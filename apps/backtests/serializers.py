"""Backtest serializers: the API's and the live events' payloads are the same."""
from __future__ import annotations

from rest_framework import serializers

from apps.marketdata.models import Market
from apps.strategies.models import StrategyConfig
from tradepulse.core.api import ScopedPrimaryKeyRelatedField

from .models import BacktestRun, BacktestTrade, Sizing


class BacktestRunSerializer(serializers.ModelSerializer):
    market_symbol = serializers.CharField(source="market.symbol", read_only=True)
    exchange = serializers.CharField(source="market.exchange.name", read_only=True)
    owner = serializers.CharField(source="owner.username", read_only=True)
    duration_s = serializers.FloatField(read_only=True)

    class Meta:
        model = BacktestRun
        fields = ["id", "name", "owner", "state", "progress", "message", "error", "error_code", "strategy_key",
                  "parameters", "config", "market", "market_symbol", "exchange", "timeframe", "start", "end", "cash",
                  "fee", "slippage", "sizing", "size_value", "amount_step", "min_amount", "stop_loss", "take_profit",
                  "trailing_stop", "allow_short", "allow_gaps", "candle_count", "fingerprint", "metrics", "timings",
                  "final_equity", "open_position", "skipped_entries", "gaps", "created_at", "started_at",
                  "finished_at", "duration_s"]
        read_only_fields = fields


class EngineFieldsSerializer(serializers.Serializer):
    """Capital, costs, sizing and exits: the engine settings a backtest and a training run share."""

    cash = serializers.FloatField(required=False, min_value=0)
    fee = serializers.FloatField(required=False, min_value=0)
    slippage = serializers.FloatField(required=False, min_value=0)
    sizing = serializers.ChoiceField(choices=Sizing.choices, required=False)
    size_value = serializers.FloatField(required=False)
    amount_step = serializers.FloatField(required=False, min_value=0)
    min_amount = serializers.FloatField(required=False, min_value=0)
    stop_loss = serializers.FloatField(required=False, allow_null=True)
    take_profit = serializers.FloatField(required=False, allow_null=True)
    trailing_stop = serializers.FloatField(required=False, allow_null=True)
    allow_short = serializers.BooleanField(required=False)


class BacktestCreateSerializer(EngineFieldsSerializer):
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
