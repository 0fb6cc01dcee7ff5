"""API: exchanges, markets, candles by range, download jobs, coverage, quality issues.

Every queryset goes through `visible_to` (OwnedViewSet): another user's download job is a 404.
Exchanges, markets, candles, coverage and issues are shared reference data: the role's view
permission decides. Writes call the services.
"""
from __future__ import annotations

import django_filters
from django.db.models import Count
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, mixins, permissions, serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from tradepulse.core import context
from tradepulse.core.api import (ModelPermissions, ObjectActionPermission, OwnedViewSet, ReadOnlyOwnedViewSet,
                                 ScopedPrimaryKeyRelatedField, query_params)

from . import selectors, services
from .exchanges import ExchangeUnavailable, MarketDataError
from .models import Candle, CandleCoverage, DataQualityIssue, DownloadJob, Exchange, Market
from .serializers import (CoverageQuerySerializer, CoverageSerializer, DataQualityIssueSerializer,
                          DownloadJobCreateSerializer, DownloadJobSerializer, ExchangeSerializer, FillGapsSerializer,
                          MarketSerializer, TimeMsField, coverage_data)
from .timeframes import ALL_TIMEFRAMES, ms_to_iso, nominal_ms

MAX_CANDLES_PER_REQUEST = 10_000
DEFAULT_LATEST_CANDLES = 1_000


class ExchangeProblem(exceptions.APIException):
    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "exchange_error"


class MarketDataErrors:
    """Exchange problems (unknown symbol, exchange down...) answer with their message, not a 500."""

    def handle_exception(self, exc):
        if isinstance(exc, MarketDataError):
            problem = ExchangeProblem(exc.message, code=exc.code)
            if isinstance(exc, ExchangeUnavailable):
                problem.status_code = status.HTTP_502_BAD_GATEWAY
            problem.default_code = exc.code
            exc = problem
        return super().handle_exception(exc)


class CanStartDownloads(permissions.BasePermission):
    """Refreshing an exchange's market list is part of starting a download."""

    message = "Starting downloads (and loading an exchange's markets) needs the permission to add download jobs."

    def has_permission(self, request, view):
        return request.user.has_perm("marketdata.add_downloadjob")


# --- exchanges and markets -----------------------------------------------------------------------

class ExchangeFilter(django_filters.FilterSet):
    class Meta:
        model = Exchange
        fields = ["is_file_source", "active", "code"]


class ExchangeViewSet(MarketDataErrors, ReadOnlyOwnedViewSet):
    queryset = Exchange.objects.annotate(market_count=Count("markets")).order_by("name")
    serializer_class = ExchangeSerializer
    filterset_class = ExchangeFilter
    search_fields = ["code", "name"]

    @extend_schema(request=None, responses={200: OpenApiTypes.OBJECT})
    @action(detail=True, methods=["post"], url_path="load-markets",
            permission_classes=[permissions.IsAuthenticated, CanStartDownloads])
    def load_markets(self, request, pk=None):
        """Fetch the exchange's markets through ccxt (creates/updates/deactivates Market rows)."""
        exchange = self.get_object()
        result = services.exchange_load_markets(exchange=exchange)
        return Response({**result, "exchange": ExchangeSerializer(self.get_queryset().get(pk=exchange.pk)).data})


class MarketFilter(django_filters.FilterSet):
    exchange_code = django_filters.CharFilter(field_name="exchange__code")

    class Meta:
        model = Market
        fields = ["exchange", "exchange_code", "quote", "base", "active", "type", "symbol"]


class MarketViewSet(ReadOnlyOwnedViewSet):
    queryset = Market.objects.select_related("exchange").order_by("exchange__name", "symbol")
    serializer_class = MarketSerializer
    filterset_class = MarketFilter
    search_fields = ["symbol", "base", "quote", "exchange_symbol"]
    ordering_fields = ["symbol", "quote", "base"]


# --- candles -------------------------------------------------------------------------------------

class CandleQuerySerializer(serializers.Serializer):
    market = ScopedPrimaryKeyRelatedField(queryset=Market.objects.select_related("exchange"))
    timeframe = serializers.ChoiceField(choices=list(ALL_TIMEFRAMES))
    start = TimeMsField(required=False)
    end = TimeMsField(required=False)
    limit = serializers.IntegerField(required=False, min_value=1, max_value=MAX_CANDLES_PER_REQUEST,
                                     help_text="Without start: the latest N candles (default 1,000).")

    def validate(self, attrs):
        if attrs.get("start") is not None and attrs.get("end") is not None and attrs["start"] >= attrs["end"]:
            raise serializers.ValidationError({"end": f"The end ({ms_to_iso(attrs['end'])}) must be after the start "
                                                      f"({ms_to_iso(attrs['start'])})."})
        return attrs


class CandleViewSet(OwnedViewSet):
    """Stored candles of one market × timeframe, columnar: {"time": [...ms], "open": [...], ...}."""

    queryset = Candle.objects.none()
    pagination_class = None

    @extend_schema(parameters=[CandleQuerySerializer], responses={200: OpenApiTypes.OBJECT})
    def list(self, request):
        query = CandleQuerySerializer(data=request.query_params, context={"request": request})
        query.is_valid(raise_exception=True)
        q = query.validated_data
        market, tf, start, end = q["market"], q["timeframe"], q.get("start"), q.get("end")
        if start is None:
            arrays = selectors.latest_candles(market, tf, q.get("limit") or DEFAULT_LATEST_CANDLES, end_ms=end)
        else:
            count = selectors.candle_count(market, tf, start, end)
            cap = q.get("limit") or MAX_CANDLES_PER_REQUEST
            if count > cap:
                return _bad_request(
                    f"The range holds {count:,} candles; one request returns at most {cap:,}. "
                    "Narrow the range or pick a longer timeframe.", "too_many_candles")
            arrays = selectors.candles_as_arrays(market, tf, start, end)
        return Response({
            "market": market.pk, "symbol": market.symbol, "exchange": market.exchange.code, "timeframe": tf,
            "count": len(arrays), "time": arrays.time.tolist(), "open": arrays.open.tolist(),
            "high": arrays.high.tolist(), "low": arrays.low.tolist(), "close": arrays.close.tolist(),
            "volume": arrays.volume.tolist(),
        })


def _bad_request(message: str, code: str) -> Response:
    return Response({"error": {"code": code, "message": message, "detail": {"detail": message},
                               "request_id": context.current().request_id}}, status=status.HTTP_400_BAD_REQUEST)


# --- download jobs -------------------------------------------------------------------------------

class DownloadJobFilter(django_filters.FilterSet):
    class Meta:
        model = DownloadJob
        fields = ["state", "market", "timeframe", "kind"]


class DownloadJobViewSet(MarketDataErrors, mixins.CreateModelMixin, mixins.RetrieveModelMixin, mixins.ListModelMixin, OwnedViewSet):
    """Your download jobs (operators: everyone's). Create starts one; cancel and retry act on one."""

    queryset = DownloadJob.objects.select_related("market__exchange", "owner").order_by("-created_at")
    serializer_class = DownloadJobSerializer
    filterset_class = DownloadJobFilter
    ordering_fields = ["created_at", "state", "progress"]
    permission_classes = [permissions.IsAuthenticated, ModelPermissions, ObjectActionPermission]

    def get_serializer_class(self):
        return DownloadJobCreateSerializer if self.action == "create" else DownloadJobSerializer

    @extend_schema(request=DownloadJobCreateSerializer, responses={201: DownloadJobSerializer})
    def create(self, request, *args, **kwargs):
        data = DownloadJobCreateSerializer(data=request.data, context=self.get_serializer_context())
        data.is_valid(raise_exception=True)
        v = data.validated_data
        market = v.get("market") or services.market_get_or_load(exchange=v["exchange"], symbol=v["symbol"])
        job = services.download_start(owner=request.user, market=market, timeframe=v["timeframe"],
                                      start_ms=v["start"], end_ms=v["end"])
        job.refresh_from_db()
        return Response(DownloadJobSerializer(job).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={200: DownloadJobSerializer})
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        job = services.download_cancel(job=self.get_object())
        return Response(DownloadJobSerializer(job).data)

    @extend_schema(request=None, responses={200: DownloadJobSerializer})
    @action(detail=True, methods=["post"])
    def retry(self, request, pk=None):
        job = services.download_retry(job=self.get_object())
        job.refresh_from_db()
        return Response(DownloadJobSerializer(job).data)

    @extend_schema(request=FillGapsSerializer, responses={201: DownloadJobSerializer(many=True)})
    @action(detail=False, methods=["post"], url_path="fill-gaps")
    def fill_gaps(self, request):
        """One job per fillable gap of a market × timeframe."""
        data = FillGapsSerializer(data=request.data, context=self.get_serializer_context())
        data.is_valid(raise_exception=True)
        jobs = services.gaps_fill(owner=request.user, market=data.validated_data["market"],
                                  timeframe=data.validated_data["timeframe"])
        fresh = DownloadJob.objects.select_related("market__exchange", "owner").filter(pk__in=[j.pk for j in jobs])
        return Response(DownloadJobSerializer(fresh, many=True).data, status=status.HTTP_201_CREATED)


# --- coverage and quality ------------------------------------------------------------------------

class CoverageViewSet(OwnedViewSet):
    """Covered ranges and gaps per market × timeframe (filters: market, exchange, timeframe)."""

    queryset = CandleCoverage.objects.all()
    pagination_class = None

    @extend_schema(parameters=[CoverageQuerySerializer], responses={200: CoverageSerializer(many=True)})
    def list(self, request):
        query = query_params(request, CoverageQuerySerializer)
        market_ids = [query["market"]] if query.get("market") else None
        covs = selectors.coverage_list(market_ids=market_ids, timeframe=query.get("timeframe"),
                                       exchange_id=query.get("exchange"))
        markets = Market.objects.select_related("exchange").in_bulk({c.market_id for c in covs})
        rows = [coverage_data(c, markets[c.market_id]) for c in covs]
        rows.sort(key=lambda r: (r["exchange"], r["symbol"], nominal_ms(r["timeframe"])))
        return Response(rows)


class IssueFilter(django_filters.FilterSet):
    resolved = django_filters.BooleanFilter(field_name="resolved_at", lookup_expr="isnull", exclude=True)

    class Meta:
        model = DataQualityIssue
        fields = ["market", "timeframe", "kind", "resolved", "exchange_has_no_data", "job", "rejected"]


class DataQualityIssueViewSet(ReadOnlyOwnedViewSet):
    queryset = DataQualityIssue.objects.select_related("market__exchange").order_by("-detected_at", "start_ms")
    serializer_class = DataQualityIssueSerializer
    filterset_class = IssueFilter
    search_fields = ["detail", "market__symbol"]
    ordering_fields = ["detected_at", "start_ms", "kind"]

    @extend_schema(request=None, responses={200: DataQualityIssueSerializer})
    @action(detail=True, methods=["post"])
    def resolve(self, request, pk=None):
        issue = services.issue_resolve(issue=self.get_object(), reason=str(request.data.get("reason", ""))[:500])
        return Response(DataQualityIssueSerializer(issue).data)


def register(router):
    router.register("exchanges", ExchangeViewSet, basename="exchange")
    router.register("markets", MarketViewSet, basename="market")
    router.register("candles", CandleViewSet, basename="candle")
    router.register("download-jobs", DownloadJobViewSet, basename="download-job")
    router.register("coverage", CoverageViewSet, basename="coverage")
    router.register("quality-issues", DataQualityIssueViewSet, basename="quality-issue")
