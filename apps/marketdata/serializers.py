"""Serializers for the API and for live event payloads (one shape for both)."""
from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from tradepulse.core.api import ScopedPrimaryKeyRelatedField

from .models import DataQualityIssue, DownloadJob, Exchange, Market
from .selectors import Coverage
from .timeframes import ALL_TIMEFRAMES, bars_between, ms_to_iso, parse_time_ms


@extend_schema_field(OpenApiTypes.STR)
class TimeMsField(serializers.Field):
    """Accepts epoch ms or ISO-8601 (no offset = UTC); returns epoch ms."""

    default_error_messages = {"invalid": "{error}"}

    def to_internal_value(self, data):
        try:
            return parse_time_ms(data)
        except ValueError as exc:
            self.fail("invalid", error=str(exc))

    def to_representation(self, value):
        return value


class ExchangeSerializer(serializers.ModelSerializer):
    market_count = serializers.IntegerField(read_only=True, default=None)

    class Meta:
        model = Exchange
        fields = ["id", "code", "name", "is_file_source", "supports_sandbox", "timeframes", "active",
                  "markets_loaded_at", "market_count"]


class MarketSerializer(serializers.ModelSerializer):
    exchange_code = serializers.CharField(source="exchange.code", read_only=True)

    class Meta:
        model = Market
        fields = ["id", "exchange", "exchange_code", "symbol", "exchange_symbol", "base", "quote", "type", "active",
                  "price_precision", "amount_precision", "price_step", "amount_step", "limits"]


class DownloadJobSerializer(serializers.ModelSerializer):
    """Also the payload of marketdata.download.* events."""

    owner = serializers.CharField(source="owner.get_username", read_only=True)
    symbol = serializers.CharField(source="market.symbol", read_only=True)
    exchange = serializers.CharField(source="market.exchange.code", read_only=True)
    start = serializers.SerializerMethodField()
    end = serializers.SerializerMethodField()
    duration_s = serializers.FloatField(read_only=True, allow_null=True)

    class Meta:
        model = DownloadJob
        fields = ["id", "owner", "market", "symbol", "exchange", "timeframe", "kind", "start_ms", "end_ms", "start",
                  "end", "state", "progress", "message", "error", "cancel_requested", "total_candles",
                  "rows_fetched", "rows_stored", "rows_rejected", "candles_per_second", "eta_seconds", "attempts",
                  "error_code", "created_at", "started_at", "finished_at", "duration_s"]
        read_only_fields = fields

    def get_start(self, job) -> str | None:
        return ms_to_iso(job.start_ms)

    def get_end(self, job) -> str | None:
        return ms_to_iso(job.end_ms)


class DownloadJobCreateSerializer(serializers.Serializer):
    """Either `market` (id) or `exchange` (id) + `symbol`; times as ISO-8601 or epoch ms."""

    market = ScopedPrimaryKeyRelatedField(queryset=Market.objects.select_related("exchange"), required=False)
    exchange = ScopedPrimaryKeyRelatedField(queryset=Exchange.objects.all(), required=False)
    symbol = serializers.CharField(required=False, max_length=64)
    timeframe = serializers.ChoiceField(choices=list(ALL_TIMEFRAMES))
    start = TimeMsField()
    end = TimeMsField()

    def validate(self, attrs):
        if not attrs.get("market") and not (attrs.get("exchange") and attrs.get("symbol")):
            raise serializers.ValidationError("Pick a market, or give an exchange and a symbol.")
        return attrs


class FillGapsSerializer(serializers.Serializer):
    market = ScopedPrimaryKeyRelatedField(queryset=Market.objects.all())
    timeframe = serializers.ChoiceField(choices=list(ALL_TIMEFRAMES))


class DataQualityIssueSerializer(serializers.ModelSerializer):
    symbol = serializers.CharField(source="market.symbol", read_only=True)
    exchange = serializers.CharField(source="market.exchange.code", read_only=True)
    kind_label = serializers.CharField(source="get_kind_display", read_only=True)
    start = serializers.SerializerMethodField()
    end = serializers.SerializerMethodField()

    class Meta:
        model = DataQualityIssue
        fields = ["id", "market", "symbol", "exchange", "timeframe", "kind", "kind_label", "start_ms", "end_ms",
                  "start", "end", "row_count", "detail", "sample", "rejected", "exchange_has_no_data", "source", "job",
                  "detected_at", "resolved_at"]
        read_only_fields = fields

    def get_start(self, issue) -> str | None:
        return ms_to_iso(issue.start_ms)

    def get_end(self, issue) -> str | None:
        return ms_to_iso(issue.end_ms)


class CoverageQuerySerializer(serializers.Serializer):
    market = serializers.IntegerField(required=False, min_value=1, help_text="Only this market.")
    exchange = serializers.IntegerField(required=False, min_value=1, help_text="Only this exchange's markets.")
    timeframe = serializers.ChoiceField(choices=list(ALL_TIMEFRAMES), required=False)


class CoverageRangeSerializer(serializers.Serializer):
    start_ms = serializers.IntegerField()
    end_ms = serializers.IntegerField()
    start = serializers.CharField()
    end = serializers.CharField()
    candles = serializers.IntegerField()


class CoverageGapSerializer(CoverageRangeSerializer):
    exchange_has_no_data = serializers.BooleanField()
    before_retention = serializers.BooleanField()
    fillable = serializers.BooleanField()


class CoverageSerializer(serializers.Serializer):
    """The shape of `coverage_data` (one market × timeframe), for the schema."""

    market = serializers.IntegerField()
    symbol = serializers.CharField()
    exchange = serializers.CharField()
    exchange_name = serializers.CharField()
    timeframe = serializers.CharField()
    first_ms = serializers.IntegerField(allow_null=True)
    end_ms = serializers.IntegerField(allow_null=True)
    first = serializers.CharField(allow_null=True)
    end = serializers.CharField(allow_null=True)
    candles = serializers.IntegerField()
    missing_candles = serializers.IntegerField()
    ranges = CoverageRangeSerializer(many=True)
    gaps = CoverageGapSerializer(many=True)
    fillable_gaps = serializers.IntegerField()


def _range(a: int, b: int, timeframe: str) -> dict:
    return {"start_ms": a, "end_ms": b, "start": ms_to_iso(a), "end": ms_to_iso(b),
            "candles": bars_between(a, b, timeframe)}


def coverage_data(cov: Coverage, market: Market) -> dict:
    """Plain data for one market × timeframe's coverage (API and events)."""
    tf = cov.timeframe
    return {
        "market": market.pk, "symbol": market.symbol, "exchange": market.exchange.code,
        "exchange_name": market.exchange.name, "timeframe": cov.timeframe,
        "first_ms": cov.first_ms, "end_ms": cov.end_ms, "first": ms_to_iso(cov.first_ms), "end": ms_to_iso(cov.end_ms),
        "candles": cov.candles, "missing_candles": cov.missing_candles,
        "ranges": [_range(a, b, tf) for a, b in cov.ranges],
        "gaps": [{**_range(g.start_ms, g.end_ms, tf), "exchange_has_no_data": g.exchange_has_no_data,
                  "before_retention": g.before_retention, "fillable": g.fillable} for g in cov.gaps],
        "fillable_gaps": sum(1 for g in cov.gaps if g.fillable),
    }
