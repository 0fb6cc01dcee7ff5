"""API: backtests — create, list, detail, trades, equity, compare, CSV export, cancel, save as config."""
from __future__ import annotations

import csv
import io

import django_filters
from django.http import HttpResponse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from apps.strategies.api import StrategyConfigSerializer
from tradepulse.core.api import OwnedViewSet

from . import selectors, services
from .models import BacktestRun
from .serializers import BacktestCreateSerializer, BacktestRunSerializer, BacktestTradeSerializer


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

    @extend_schema(parameters=[OpenApiParameter("max_points", int)])
    @action(detail=True, methods=["get"])
    def equity(self, request, pk=None):
        """Equity and drawdown at each close, downsampled (peaks and troughs kept)."""
        max_points = min(max(int(request.query_params.get("max_points", 2000)), 10), 20000)
        return Response(selectors.equity_series(self.get_object(), max_points=max_points))

    @action(detail=True, methods=["get"])
    def prices(self, request, pk=None):
        """The run's candles for a chart (resampled to at most ~1,500) with entry/exit markers."""
        run = self.get_object()
        bars = services.load_bars(run.market, services.spec_for_run(run))
        return Response(selectors.price_series(run, bars))

    @extend_schema(parameters=[OpenApiParameter("ids", str, description="Comma-separated run ids"),
                               OpenApiParameter("rank_by", str)])
    @action(detail=False, methods=["get"])
    def compare(self, request):
        """Side-by-side metrics of any runs you may see, ranked; ids you may not see are 404."""
        ids = _ids(request.query_params.get("ids", ""))
        if len(ids) < 2:
            raise ValidationError({"ids": "Give at least two run ids to compare, e.g. ?ids=3,7."})
        runs = list(self.get_queryset().filter(pk__in=ids))
        missing = sorted(set(ids) - {r.pk for r in runs})
        if missing:
            return Response({"error": {"code": "not_found", "message": f"No backtest {', '.join(map(str, missing))}."}},
                            status=status.HTTP_404_NOT_FOUND)
        try:
            result = selectors.compare(runs, rank_by=request.query_params.get("rank_by", "sharpe"))
        except ValueError as exc:
            raise ValidationError({"rank_by": str(exc)}) from None
        for row in result["runs"]:
            row["equity"] = selectors.equity_series(next(r for r in runs if r.pk == row["id"]), max_points=500)
        return Response(result)

    @extend_schema(parameters=[OpenApiParameter("what", str, enum=["trades", "metrics"])])
    @action(detail=True, methods=["get"])
    def export(self, request, pk=None):
        """CSV of the run's trades (default) or its metrics."""
        run = self.get_object()
        what = request.query_params.get("what", "trades")
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        if what == "metrics":
            writer.writerow(["metric", "value"])
            writer.writerows(sorted(run.metrics.items()))
            writer.writerow(["final_equity", run.final_equity])
        elif what == "trades":
            columns = ["number", "side", "entry_time", "exit_time", "entry_price", "exit_price", "size", "fees", "pnl",
                       "return_pct", "exit_reason"]
            writer.writerow(columns)
            for trade in run.trades.all().iterator():
                writer.writerow([getattr(trade, c).isoformat() if c.endswith("_time") else getattr(trade, c)
                                 for c in columns])
        else:
            raise ValidationError({"what": "Export 'trades' or 'metrics'."})
        response = HttpResponse(buffer.getvalue(), content_type="text/csv")
        response["Content-Disposition"] = f'attachment; filename="backtest-{run.pk}-{what}.csv"'
        return response

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


def _ids(raw: str) -> list[int]:
    try:
        return sorted({int(x) for x in raw.split(",") if x.strip()})
    except ValueError:
        raise ValidationError({"ids": f"{raw!r} is not a comma-separated list of run ids."}) from None


def register(router):
    router.register("backtests", BacktestRunViewSet, basename="backtest")
