"""API: training runs — create, list, detail, cancel, trials, create a config from a trial, plots."""
from __future__ import annotations

import json
import warnings

import django_filters
import optuna
from plotly.utils import PlotlyJSONEncoder
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from apps.strategies.api import StrategyConfigSerializer
from tradepulse.core.api import OwnedViewSet, query_params

from quant.optimisation.storage import dispose_storage

from . import services
from .models import TrainingRun
from optuna.trial import TrialState

from quant.optimisation import FINAL, load_study, study_names
from quant.optimisation.runner import trial_penalty
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


class TrialQuerySerializer(serializers.Serializer):
    state = serializers.ChoiceField(choices=TRIAL_STATES, required=False, help_text="Only trials in this state.")
    study = serializers.CharField(required=False, max_length=40, help_text='"fold-<i>" or "final"')


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

    @extend_schema(request=None, responses=TrainingRunSerializer)
    @action(detail=True, methods=["post"])
    def retry(self, request, pk=None):
        """Queue a failed, interrupted or cancelled run again; it resumes from the trials its
        studies finished (a run still queued or running answers 400)."""
        run = services.training_retry(run=self.get_object(), reason=request.data.get("reason", ""))
        run.refresh_from_db()
        return Response(TrainingRunSerializer(run).data)

    @extend_schema(parameters=[TrialQuerySerializer], responses=TrainingTrialSerializer(many=True))
    @action(detail=True, methods=["get"])
    def trials(self, request, pk=None):
        """Every finished trial of every study, in the order they finished (paginated);
        `?state=complete|pruned|fail`, `?study=fold-0|…|final`."""
        run = self.get_object()
        trials = run.trials.all()
        query = query_params(request, TrialQuerySerializer)
        state = query.get("state")
        if state:
            trials = trials.filter(state=state)
        study = query.get("study")
        if study:
            keys = list(study_names(run.study_name, run.folds))
            if study not in keys:
                raise ValidationError({"study": f"Filter by one of {', '.join(keys)}."})
            trials = trials.filter(study=study)
        page = self.paginate_queryset(trials)
        return self.get_paginated_response(TrainingTrialSerializer(page, many=True).data)

    @extend_schema(request=None, responses={201: StrategyConfigSerializer, 200: StrategyConfigSerializer})
    @action(detail=True, methods=["post"], url_path="create-config")
    def create_config(self, request, pk=None):
        """`{"trial": <number>, "study": "final", "name": ""}`: that trial's parameters become a
        DISCOVERY config (201). A trial already saved as a config of this run answers 200 with
        that config instead of making a duplicate; `created` in the body says which."""
        run = self.get_object()
        try:
            number = int(request.data.get("trial"))
        except (TypeError, ValueError):
            raise ValidationError({"trial": "Give the trial number, e.g. {\"trial\": 7}."}) from None
        config, created = services.training_create_config_from_trial(
            run=run, number=number, owner=request.user, study=request.data.get("study") or FINAL,
            name=request.data.get("name", ""))
        return Response({**StrategyConfigSerializer(config, context={"request": request}).data, "created": created},
                        status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)

    @extend_schema(responses=OpenApiTypes.OBJECT)
    @action(detail=True, methods=["get"])
    def plots(self, request, pk=None):
        """optuna's plotly figures of the final study (the one whose parameters are offered) as
        JSON: `{name: {"figure": {...}} | {"message": "..."}}` for history, importances, slice
        and contour. Only measured values are drawn: trials whose value is a penalty (too few
        trades, undefined metric) are left out and counted in the message."""
        run = self.get_object()
        stored = load_study(services.optuna_storage_url(run.study_name),
                            study_names(run.study_name, run.folds)[FINAL])
        try:
            trials = stored.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        finally:
            dispose_storage(stored._storage)
        measured = [t for t in trials if trial_penalty(t) is None]
        penalised = len(trials) - len(measured)
        study = optuna.create_study(direction="maximize")  # in memory: just what is drawn
        study.add_trials(measured)
        left_out = f" ({penalised} penalised trial(s) left out)" if penalised else ""
        figures = {}
        for name, plot in PLOTS.items():
            if len(measured) < 2:
                figures[name] = {"message": f"Not enough measured trials yet ({len(measured)}{left_out}); "
                                            "plots need at least 2."}
                continue
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    figures[name] = {"figure": plot(study).to_plotly_json(), "left_out": penalised}
            except (ValueError, RuntimeError, ZeroDivisionError) as exc:
                figures[name] = {"message": f"Cannot draw {name} yet: {exc}"}
        return Response(_jsonable(figures))


def _jsonable(value):
    """plotly figures hold numpy arrays; DRF's encoder wants lists."""
    return json.loads(json.dumps(value, cls=PlotlyJSONEncoder))


def register(router):
    router.register("training-runs", TrainingRunViewSet, basename="training-run")
