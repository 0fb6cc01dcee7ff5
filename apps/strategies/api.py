"""API: the strategy library (with parameter schemas) and strategy configurations."""
from __future__ import annotations

import django_filters
from django.db.models import Prefetch
from drf_spectacular.utils import extend_schema
from rest_framework import permissions, serializers, viewsets
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from apps.marketdata.models import Market
from tradepulse.core.api import OwnedModelViewSet, ScopedPrimaryKeyRelatedField

from . import services
from quant.strategies import UnknownStrategy, all_strategies, get_strategy
from quant.strategies.provenance import code_version, code_version_files
from .execution import EXECUTION_FIELDS
from .models import ConfigEvidence, StrategyConfig


def strategy_payload(cls) -> dict:
    return {**cls.schema(), "code_version": code_version(cls.key), "code_files": list(code_version_files(cls.key))}


class StrategySerializer(serializers.Serializer):
    key = serializers.CharField()
    name = serializers.CharField()
    description = serializers.CharField()
    params = serializers.JSONField(help_text="Parameter definitions: type, default, bounds, step, choices, help.")
    timeframes = serializers.ListField(child=serializers.CharField())
    supports_short = serializers.BooleanField()
    code_version = serializers.CharField(help_text="SHA-256 of the strategy's source and the engine and metrics code "
                                                   "it runs with, as loaded now.")
    code_files = serializers.ListField(child=serializers.CharField(), help_text="The files code_version hashes.")


class StrategyViewSet(viewsets.ViewSet):
    """The strategy library: every registered strategy with its parameter schema."""

    permission_classes = [permissions.IsAuthenticated]
    lookup_field = "key"
    lookup_value_regex = "[a-z0-9_]+"

    @extend_schema(responses=StrategySerializer(many=True))
    def list(self, request):
        return Response([strategy_payload(cls) for cls in all_strategies()])

    @extend_schema(responses=StrategySerializer)
    def retrieve(self, request, key=None):
        try:
            return Response(strategy_payload(get_strategy(key)))
        except UnknownStrategy as exc:
            raise NotFound(str(exc)) from None


class ConfigEvidenceSerializer(serializers.ModelSerializer):
    """One typed evidence row; `run` links the run that measured it (type, id, dashboard page)."""

    run = serializers.SerializerMethodField()

    class Meta:
        model = ConfigEvidence
        fields = ["id", "source", "period_start", "period_end", "fingerprint", "code_version", "trades", "sharpe",
                  "max_drawdown", "total_return", "oos_sharpe", "dsr", "pbo", "run", "trial", "metrics", "created_at"]
        read_only_fields = fields

    def get_run(self, row) -> dict | None:
        if row.run_type_id is None:
            return None
        return {"type": f"{row.run_type.app_label}.{row.run_type.model}", "id": row.run_id, "url": row.run_url}


class StrategyConfigSerializer(serializers.ModelSerializer):
    market = ScopedPrimaryKeyRelatedField(queryset=Market.objects.all())
    evidence = ConfigEvidenceSerializer(many=True, read_only=True,
                                        help_text="Measured results, latest period first (backtest, training "
                                                  "out-of-sample and hold-out, later paper, testnet, live).")
    market_symbol = serializers.CharField(source="market.symbol", read_only=True)
    exchange = serializers.CharField(source="market.exchange.name", read_only=True)
    owner = serializers.CharField(source="owner.username", read_only=True)

    class Meta:
        model = StrategyConfig
        fields = ["id", "name", "strategy_key", "market", "market_symbol", "exchange", "timeframe", "parameters",
                  *EXECUTION_FIELDS, "code_version", "stage", "source", "provenance", "metrics", "evidence", "notes",
                  "owner", "created_at", "updated_at"]
        read_only_fields = ["code_version", "evidence", "stage", "source", "provenance", "metrics", "owner", "created_at",
                            "updated_at"]

    def create(self, validated_data):
        execution = {f: validated_data.pop(f) for f in EXECUTION_FIELDS if f in validated_data}
        return services.config_create(owner=self.context["request"].user, reason="created through the API",
                                      execution=execution, **validated_data)

    def update(self, instance, validated_data):
        fixed = sorted(set(validated_data) - set(services.EDITABLE))
        if fixed:
            raise serializers.ValidationError({f: "Cannot be changed after creation; create a new config." for f in fixed})
        reason = str(self.initial_data.get("reason", "")).strip() or "changed through the API"
        return services.config_update(config=instance, reason=reason, **validated_data)


class StrategyConfigFilter(django_filters.FilterSet):
    class Meta:
        model = StrategyConfig
        fields = ["stage", "strategy_key", "market", "timeframe", "source"]


class StrategyConfigViewSet(OwnedModelViewSet):
    # No PUT: strategy, market and timeframe are fixed at creation, so a full replace could only
    # ever fail; PATCH changes what may change.
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    queryset = StrategyConfig.objects.select_related("market__exchange", "owner").prefetch_related(
        Prefetch("evidence", queryset=ConfigEvidence.objects.select_related("run_type")))
    serializer_class = StrategyConfigSerializer
    filterset_class = StrategyConfigFilter
    search_fields = ["name", "strategy_key", "notes"]
    ordering_fields = ["created_at", "name", "stage"]

    def perform_destroy(self, instance):
        data = self.request.data if hasattr(self.request.data, "get") else {}
        reason = str(data.get("reason", "")).strip()[:500] or "deleted through the API"
        services.config_delete(config=instance, reason=reason)


def register(router):
    router.register("strategies", StrategyViewSet, basename="strategy")
    router.register("strategy-configs", StrategyConfigViewSet, basename="strategy-config")
