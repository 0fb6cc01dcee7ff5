"""API: training runs — create, list, detail, cancel, trials, create a config from a trial, plots."""
from __future__ import annotations

import json
import warnings

import django_filters
import optuna
from plotly.utils import PlotlyJSONEncoder
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from apps.strategies.api import StrategyConfigSerializer
from tradepulse.core.api import OwnedViewSet

from . import services
from .models import TrainingRun
from quant.optimisation import load_study
from .serializers import (TrainingBatchSerializer, TrainingCreateSerializer, TrainingRunDetailSerializer,
                                   TrainingRunSerializer,
                                   TrainingTrialSerializer)

TRIAL_STATES = ("complete", "pruned", "fail")
PLOTS = {
    "history": optuna.visualization.plot_optimization_history,
    "importances": optuna.visualization.plot_param_importances,
    "slice": optuna.visualization.plot_slice,
    "contour": optuna.visualization.plot_contour,
}


class TrainingFilter(django_filters.FilterSet):
    class Meta:
        model = TrainingRun
        fields = ["state", "strategy_key", "market", "timeframe", "batch"]


class TrainingRunViewSet(mixins.CreateModelMixin, mixins.RetrieveModelMixin, mixins.ListModelMixin, OwnedViewSet):
    queryset = TrainingRun.objects.select_related("market__exchange", "owner")
    serializer_class = TrainingRunSerializer
    filterset_class = TrainingFilter
    search_fields = ["name", "strategy_key"]
    ordering_fields = ["created_at", "best_value"]

    def get_serializer_class(self):
        return {"create": TrainingCreateSerializer, "retrieve": TrainingRunDetailSerializer}.get(
            self.action, TrainingRunSerializer)

    def filter_queryset(self, queryset):
        # The run filters are for the list; `?state=` on /trials/ filters trials, not the run.
        return super().filter_queryset(queryset) if self.action == "list" else queryset

    @extend_schema(request=TrainingCreateSerializer, responses={201: TrainingRunSerializer})
    def create(self, request, *args, **kwargs):
        data = TrainingCreateSerializer(data=request.data, context={"request": request})
        data.is_valid(raise_exception=True)
        run = services.training_create(owner=request.user, **data.validated_data)
        return Response(TrainingRunSerializer(run).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=TrainingBatchSerializer, responses={201: TrainingRunSerializer(many=True)})
    @action(detail=False, methods=["post"])
    def batch(self, request):
        """Start one run per strategy × market × timeframe; all are checked first, all or nothing."""
        self.check_permissions(request)
        data = TrainingBatchSerializer(data=request.data, context={"request": request})
        data.is_valid(raise_exception=True)
        runs = services.training_create_batch(owner=request.user, **data.validated_data)
        return Response(TrainingRunSerializer(runs, many=True).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses=TrainingRunSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        run = self.get_object()
        run = services.training_cancel(run=run, reason=request.data.get("reason", ""))
        return Response(TrainingRunSerializer(run).data)

    @extend_schema(parameters=[OpenApiParameter("state", str, enum=list(TRIAL_STATES))],
                   responses=TrainingTrialSerializer(many=True))
    @action(detail=True, methods=["get"])
    def trials(self, request, pk=None):
        """Every finished trial, by number (paginated); `?state=complete|pruned|fail`."""
        trials = self.get_object().trials.all()
        state = request.query_params.get("state")
        if state:
            if state not in TRIAL_STATES:
                raise ValidationError({"state": f"Filter by one of {', '.join(TRIAL_STATES)}."})
            trials = trials.filter(state=state)
        page = self.paginate_queryset(trials)
        return self.get_paginated_response(TrainingTrialSerializer(page, many=True).data)

    @extend_schema(request=None, responses={201: StrategyConfigSerializer})
    @action(detail=True, methods=["post"], url_path="create-config")
    def create_config(self, request, pk=None):
        """`{"trial": <number>, "name": ""}`: that trial's parameters become a DISCOVERY config."""
        run = self.get_object()
        try:
            number = int(request.data.get("trial"))
        except (TypeError, ValueError):
            raise ValidationError({"trial": "Give the trial number, e.g. {\"trial\": 7}."}) from None
        config = services.training_create_config_from_trial(run=run, number=number, owner=request.user,
                                                            name=request.data.get("name", ""))
        return Response(StrategyConfigSerializer(config, context={"request": request}).data,
                        status=status.HTTP_201_CREATED)

    @action(detail=True, methods=["get"])
    def plots(self, request, pk=None):
        """optuna's plotly figures as JSON: `{name: {"figure": {...}} | {"message": "..."}}` for
        history, importances, slice and contour."""
        run = self.get_object()
        complete = run.trials.filter(state="complete").count()
        study = load_study(services.optuna_storage_url(), run.study_name)
        figures = {}
        try:
            for name, plot in PLOTS.items():
                if complete < 2:
                    figures[name] = {"message": f"Not enough completed trials yet ({complete}); plots need at least 2."}
                    continue
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        figures[name] = {"figure": plot(study).to_plotly_json()}
                except (ValueError, RuntimeError, ZeroDivisionError) as exc:
                    figures[name] = {"message": f"Cannot draw {name} yet: {exc}"}
        finally:
            services.dispose_study(study)
        return Response(_jsonable(figures))


def _jsonable(value):
    """plotly figures hold numpy arrays; DRF's encoder wants lists."""
    return json.loads(json.dumps(value, cls=PlotlyJSONEncoder))


def register(router):
    router.register("training-runs", TrainingRunViewSet, basename="training-run")
