"""API: backtests — create, list, detail, trades, equity, compare, CSV export, cancel, save as config."""
from __future__ import annotations

import django_filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from apps.strategies.api import StrategyConfigSerializer
from tradepulse.core.api import OwnedViewSet, query_params
from tradepulse.core.csvexport import csv_stream

from . import selectors, services
from .models import BacktestRun
from .serializers import (BacktestCreateSerializer, BacktestRunSerializer, BacktestTradeSerializer, CompareQuerySerializer,
                          EquityQuerySerializer, EquitySeriesSerializer, ExportQuerySerializer, PriceSeriesSerializer)


class BacktestFilter(django_filters.FilterSet):
    class Meta:
        model = BacktestRun
        fields = ["state", "strategy_key", "market", "timeframe", "config"]


class BacktestRunViewSet(mixins.CreateModelMixin, mixins.RetrieveModelMixin, mixins.ListModelMixin, OwnedViewSet):
    queryset = BacktestRun.objects.select_related("market__exchange", "owner")
    serializer_class = BacktestRunSerializer
    filterset_class = BacktestFilter
    search_fields = ["name", "strategy_key"]
    ordering_fields = ["created_at", "final_equity"]

    def get_serializer_class(self):
        return BacktestCreateSerializer if self.action == "create" else BacktestRunSerializer

    @extend_schema(request=BacktestCreateSerializer, responses={201: BacktestRunSerializer})
    def create(self, request, *args, **kwargs):
        data = BacktestCreateSerializer(data=request.data, context={"request": request})
        data.is_valid(raise_exception=True)
        run = services.backtest_create(owner=request.user, **data.validated_data)
        return Response(BacktestRunSerializer(run).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses=BacktestTradeSerializer(many=True))
    @action(detail=True, methods=["get"])
    def trades(self, request, pk=None):
        run = self.get_object()
        page = self.paginate_queryset(run.trades.all())
        return self.get_paginated_response(BacktestTradeSerializer(page, many=True).data)

    @extend_schema(parameters=[EquityQuerySerializer], responses=EquitySeriesSerializer)
    @action(detail=True, methods=["get"])
    def equity(self, request, pk=None):
        """Equity and drawdown at each close, downsampled (peaks and troughs kept)."""
        run = self.get_object()
        query = query_params(request, EquityQuerySerializer)
        return Response(selectors.equity_series(run, max_points=query["max_points"]))

    @extend_schema(responses=PriceSeriesSerializer)
    @action(detail=True, methods=["get"])
    def prices(self, request, pk=None):
        """The run's candles for a chart (resampled to at most ~1,500) with entry/exit markers."""
        run = self.get_object()
        bars = services.load_bars(run.market, services.spec_for_run(run))
        return Response(PriceSeriesSerializer(selectors.price_series(run, bars)).data)

    @extend_schema(parameters=[CompareQuerySerializer], responses=OpenApiTypes.OBJECT)
    @action(detail=False, methods=["get"])
    def compare(self, request):
        """Side-by-side metrics of any runs you may see, ranked; ids you may not see are 404."""
        query = query_params(request, CompareQuerySerializer)
        ids = query["ids"]
        runs = list(self.get_queryset().filter(pk__in=ids))
        missing = sorted(set(ids) - {r.pk for r in runs})
        if missing:
            raise NotFound(f"No backtest {', '.join(map(str, missing))}.")
        result = selectors.compare(runs, rank_by=query["rank_by"])
        for row in result["runs"]:
            row["equity"] = selectors.equity_series(next(r for r in runs if r.pk == row["id"]), max_points=500)
        return Response(result)

    @extend_schema(parameters=[ExportQuerySerializer], responses={(200, "text/csv"): OpenApiTypes.STR})
    @action(detail=True, methods=["get"])
    def export(self, request, pk=None):
        """CSV of the run's trades (default) or its metrics, streamed."""
        run = self.get_object()
        what = query_params(request, ExportQuerySerializer)["what"]
        filename = f"backtest-{run.pk}-{what}.csv"
        if what == "metrics":
            rows = [*sorted(run.metrics.items()), ("final_equity", run.final_equity)]
            return csv_stream(["metric", "value"], rows, filename)
        columns = ["number", "side", "entry_time", "exit_time", "entry_price", "exit_price", "size", "fees", "pnl",
                   "return_pct", "exit_reason"]
        rows = ([t[0], t[1], t[2].isoformat(), t[3].isoformat(), *t[4:]]
                for t in run.trades.order_by("number").values_list(*columns).iterator(chunk_size=5000))
        return csv_stream(columns, rows, filename)

    @extend_schema(request=None, responses=BacktestRunSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        run = self.get_object()
        self.check_object_permissions(request, run)
        return Response(BacktestRunSerializer(services.backtest_cancel(run=run, reason=request.data.get("reason", ""))).data)

    @extend_schema(request=None, responses={201: StrategyConfigSerializer})
    @action(detail=True, methods=["post"], url_path="save-as-config")
    def save_as_config(self, request, pk=None):
        run = self.get_object()
        config = services.backtest_save_as_config(run=run, owner=request.user, name=request.data.get("name", ""),
                                                  notes=request.data.get("notes", ""))
        return Response(StrategyConfigSerializer(config, context={"request": request}).data,
                        status=status.HTTP_201_CREATED)


def register(router):
    router.register("backtests", BacktestRunViewSet, basename="backtest")
