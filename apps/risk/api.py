"""API under /api/v1/risk/: profiles (read, change with a reason), overrides (create, revoke),
kill switches (trip, release), the adaptive sizing history, and the overview of limits and
usage per scope. Everything goes through apps.risk.services; a target the user may not see is
answered exactly like one that does not exist."""
from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db.models import Q
from django.urls import path
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, permissions, status
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.backtests.models import BacktestRun
from apps.trading.models import Deployment, ExchangeAccount
from tradepulse.core.api import OwnedViewSet, query_params
from tradepulse.core.permissions import sees_everything, visible_to

from . import selectors, services
from .backtest import backtest_with_limits
from .models import KillSwitch, RiskOverride, RiskProfile, Scope, SizingAdjustment
from .serializers import (KillSwitchSerializer, OverrideCreateSerializer, OverviewQuerySerializer,
                          ProfileChangeSerializer, ProfilePatchSerializer, ReasonSerializer, RiskOverrideSerializer,
                          RiskProfileSerializer, SizingAdjustmentSerializer, TripSerializer)


def visible_scoped(user, queryset):
    """Global rows, the user's own scope, and accounts/deployments the user may see."""
    if sees_everything(user):
        return queryset
    deployments = visible_to(user, Deployment.objects.all()).values("pk")
    accounts = visible_to(user, ExchangeAccount.objects.all()).values("pk")
    return queryset.filter(Q(scope=Scope.GLOBAL) | Q(scope=Scope.USER, user=user)
                           | Q(scope=Scope.ACCOUNT, account__in=accounts)
                           | Q(scope=Scope.DEPLOYMENT, deployment__in=deployments))


def resolve_visible(user, scope: str, target_id):
    """The scope's target if the user may see it; else the same error as for a missing id."""
    if scope == Scope.GLOBAL:
        if target_id is not None:
            raise ValidationError({"target": "The global scope has no target."})
        return None
    if target_id is None:
        raise ValidationError({"target": f"The {scope} scope needs the id of its {scope}."})
    if scope == Scope.USER:
        qs = get_user_model().objects.filter(pk=target_id)
        if not sees_everything(user):
            qs = qs.filter(pk=user.pk)
    else:
        model = ExchangeAccount if scope == Scope.ACCOUNT else Deployment
        qs = visible_to(user, model.objects.filter(pk=target_id))
    target = qs.first()
    if target is None:
        raise ValidationError({"target": f"No {scope} with id {target_id}."})
    return target


class ScopedViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OwnedViewSet):
    filterset_fields = ["scope", "user", "account", "deployment"]

    def get_queryset(self):
        return visible_scoped(self.request.user, self.queryset.all())


class RiskProfileViewSet(mixins.CreateModelMixin, ScopedViewSet):
    """Risk profiles: the limits at each scope (global, user, exchange account, deployment). The
    tightest of the scopes that apply binds each order."""

    queryset = RiskProfile.objects.select_related("user", "account", "deployment")
    serializer_class = RiskProfileSerializer

    @extend_schema(request=ProfileChangeSerializer, responses={201: RiskProfileSerializer})
    def create(self, request, *args, **kwargs):
        """Set limits at a scope (its profile is created on first use), with a reason (audited)."""
        body = ProfileChangeSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        target = resolve_visible(request.user, data["scope"], data.get("target"))
        profile = services.profile_update(scope=data["scope"], target=target, changes=data["changes"],
                                          reason=data["reason"], actor=request.user)
        return Response(RiskProfileSerializer(profile).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=ProfilePatchSerializer, responses=RiskProfileSerializer)
    def partial_update(self, request, *args, **kwargs):
        """Change some limits of this profile, with a reason (before/after audited)."""
        profile = self.get_object()
        body = ProfilePatchSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        profile = services.profile_update(scope=profile.scope, target=profile.target,
                                          changes=body.validated_data["changes"],
                                          reason=body.validated_data["reason"], actor=request.user)
        return Response(RiskProfileSerializer(profile).data)


class RiskOverrideViewSet(mixins.CreateModelMixin, ScopedViewSet):
    """Manual overrides of one limit at one scope, each with a reason and an expiry."""

    queryset = RiskOverride.objects.select_related("user", "account", "deployment", "created_by")
    serializer_class = RiskOverrideSerializer
    filterset_fields = [*ScopedViewSet.filterset_fields, "limit"]

    @extend_schema(request=OverrideCreateSerializer, responses={201: RiskOverrideSerializer})
    def create(self, request, *args, **kwargs):
        body = OverrideCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        target = resolve_visible(request.user, data["scope"], data.get("target"))
        override = services.override_create(scope=data["scope"], target=target, limit=data["limit"],
                                            value=data["value"], reason=data["reason"],
                                            expires_at=data.get("expires_at"), actor=request.user)
        return Response(RiskOverrideSerializer(override).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=ReasonSerializer, responses=RiskOverrideSerializer)
    @action(detail=True, methods=["post"])
    def revoke(self, request, pk=None):
        """End the override now (with a reason)."""
        body = ReasonSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        override = services.override_revoke(override=self.get_object(), reason=body.validated_data["reason"],
                                            actor=request.user)
        return Response(RiskOverrideSerializer(override).data)


class KillSwitchViewSet(mixins.CreateModelMixin, ScopedViewSet):
    """The kill switch: POST trips it at a scope (no new entries, open entry orders cancelled,
    positions closed with flatten); release ends it. Both need a reason and are audited."""

    queryset = KillSwitch.objects.select_related("user", "account", "deployment", "tripped_by", "released_by")
    serializer_class = KillSwitchSerializer

    @extend_schema(request=TripSerializer, responses={201: KillSwitchSerializer})
    def create(self, request, *args, **kwargs):
        body = TripSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        target = resolve_visible(request.user, data["scope"], data.get("target"))
        switch = services.killswitch_trip(scope=data["scope"], target=target, reason=data["reason"],
                                          flatten=data["flatten"], actor=request.user)
        return Response(KillSwitchSerializer(switch).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=ReasonSerializer, responses=KillSwitchSerializer)
    @action(detail=True, methods=["post"])
    def release(self, request, pk=None):
        """Release the switch (with a reason): entries are checked against the limits again."""
        body = ReasonSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        switch = services.killswitch_release(switch=self.get_object(), reason=body.validated_data["reason"],
                                             actor=request.user)
        return Response(KillSwitchSerializer(switch).data)


class SizingAdjustmentViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OwnedViewSet):
    """The adaptive sizing history: each change of a deployment's risk per trade (in %), with its
    inputs and reason."""

    queryset = SizingAdjustment.objects.all()
    serializer_class = SizingAdjustmentSerializer
    filterset_fields = ["deployment"]

    def get_queryset(self):
        deployments = visible_to(self.request.user, Deployment.objects.all())
        return self.queryset.filter(deployment__in=deployments)


class RiskOverviewView(APIView):
    """Limits and current usage per scope for a deployment (all four scopes), an account, or the
    requesting user (global and user scopes). Percentages in %, notional in the quote currency;
    `ratio` is usage / limit (1 = at the limit)."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(parameters=[OverviewQuerySerializer], responses={200: OpenApiResponse(
        description="{time, scopes: [{scope, key, label, equity, limits: [{limit, label, unit, value, used, ratio, "
                    "overridden}], overrides, kill_switch}], risk_per_trade_pct, risk_per_trade_source, adaptive}")})
    def get(self, request):
        params = query_params(request, OverviewQuerySerializer)
        if params.get("deployment"):
            deployment = resolve_visible(request.user, Scope.DEPLOYMENT, params["deployment"])
            ctx = selectors.context_for(deployment=deployment)
        elif params.get("account"):
            ctx = selectors.context_for(account=resolve_visible(request.user, Scope.ACCOUNT, params["account"]))
        else:
            ctx = selectors.context_for(user=request.user)
        return Response(selectors.overview(ctx))


class BacktestWithLimitsView(APIView):
    """What the risk limits would have done to a finished backtest run: its bars replayed through
    the paper loop with the pre-trade check as the engine's hook, under the run owner's current
    global and user limits. Off by default (the run itself never changes); nothing is stored.
    Equity in the run's quote currency; total_return as a fraction."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses={200: OpenApiResponse(
        description="{run, limits_of, without_limits: {trades, final_equity, total_return}, with_limits: {trades, "
                    "final_equity, total_return, open_position}, entries: {approved, resized, rejected}, exits, "
                    "by_limit, halted, examples: [{time, outcome, requested, allowed, reasons}], not_simulated}")})
    def get(self, request, run_id: int):
        run = visible_to(request.user, BacktestRun.objects.select_related("market", "owner").filter(pk=run_id)).first()
        if run is None:
            raise NotFound("No such backtest run.")
        if run.state != "succeeded":
            raise ValidationError({"run": f"The run is {run.state}: only a finished run can be replayed."})
        return Response(backtest_with_limits(run))


def register(router):
    router.register("risk/profiles", RiskProfileViewSet, basename="risk-profile")
    router.register("risk/overrides", RiskOverrideViewSet, basename="risk-override")
    router.register("risk/kill-switches", KillSwitchViewSet, basename="risk-killswitch")
    router.register("risk/adjustments", SizingAdjustmentViewSet, basename="risk-adjustment")


urlpatterns = [path("risk/overview/", RiskOverviewView.as_view(), name="risk-overview"),
               path("risk/backtest/<int:run_id>/", BacktestWithLimitsView.as_view(), name="risk-backtest")]
