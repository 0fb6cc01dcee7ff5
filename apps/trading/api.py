"""API: exchange accounts (with a connection test), deployments (with activate/pause/stop and
reconcile), and read-only orders, fills, positions and portfolio snapshots. Orders and the rest
are visible exactly when their deployment is (another user's are 404)."""
from __future__ import annotations

import django_filters
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, permissions, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.response import Response

from tradepulse.core.api import OwnedModelViewSet, OwnedViewSet, ReadOnlyOwnedViewSet, query_params
from tradepulse.core.filters import DateTimeFilter
from tradepulse.core.permissions import can, visible_to

from . import selectors, services
from .brokers import BrokerError
from .models import OPEN_STATUSES, Deployment, ExchangeAccount, Fill, Order, PortfolioSnapshot, Position
from .serializers import (CloseResultSerializer, ConfigPerformanceSerializer, FlattenResultSerializer, ReasonSerializer, DeploymentPerformanceSerializer, DeploymentSerializer,
                          ExchangeAccountSerializer, FillSerializer, OrderSerializer, PerformanceQuerySerializer,
                          PortfolioHistoryQuerySerializer, PortfolioHistorySerializer, PortfolioSnapshotSerializer,
                          PositionSerializer, StateChangeSerializer)


def _reason(request, default: str) -> str:
    return str(request.data.get("reason", "")).strip() or default


def _require_change(request, obj) -> None:
    """Actions that decide (test a key, activate) need change permission, not just a view share."""
    if not can(request.user, "change", obj):
        raise PermissionDenied("You may view this but not act on it.")


def _require_operate(request, deployment) -> None:
    """Operational actions (pause, stop, reconcile, cancel, close, flatten): the owner, or an
    operator (who operates everything but edits nobody's research)."""
    if not selectors.may_operate(request.user, deployment):
        raise PermissionDenied("You may view this but not operate it.")


def _manual(call, **kwargs):
    """A manual action's refusal (a broker's or a service's) is a 400 naming why, never a 500."""
    try:
        return call(**kwargs)
    except BrokerError as exc:
        raise ValidationError({"detail": exc.message}) from None


class ExchangeAccountViewSet(OwnedModelViewSet):
    queryset = ExchangeAccount.objects.select_related("exchange", "owner")
    serializer_class = ExchangeAccountSerializer
    filterset_fields = ["mode", "exchange", "health"]
    search_fields = ["name"]

    def perform_create(self, serializer):
        serializer.instance = services.account_create(owner=self.request.user, reason="created through the API",
                                                      **serializer.validated_data)

    def perform_update(self, serializer):
        changes = dict(serializer.validated_data)
        fixed = sorted(set(changes) - set(services.accounts.EDITABLE))
        if fixed:
            raise ValidationError({f: "Cannot be changed; create a new account." for f in fixed})
        serializer.instance = services.account_update(account=serializer.instance,
                                                      reason=_reason(self.request, "changed through the API"),
                                                      **changes)

    def perform_destroy(self, instance):
        services.account_delete(account=instance, reason=_reason(self.request, "deleted through the API"))

    @extend_schema(request=None, responses={200: dict})
    @action(detail=True, methods=["post"], url_path="test-connection")
    def test_connection(self, request, pk=None):
        """Ask the exchange what the key may do (read, trade, withdraw) and fetch balances."""
        account = self.get_object()
        _require_change(request, account)
        result = services.account_test_connection(account=account, reason="connection test through the API")
        return Response(result)


class DeploymentViewSet(mixins.CreateModelMixin, mixins.RetrieveModelMixin, mixins.ListModelMixin, OwnedViewSet):
    queryset = Deployment.objects.select_related("config__market", "account", "owner")
    serializer_class = DeploymentSerializer
    filterset_fields = ["state", "account", "config"]
    search_fields = ["name"]

    def perform_create(self, serializer):
        data = serializer.validated_data
        serializer.instance = services.deployment_create(
            owner=self.request.user, config=data["config"], account=data["account"], capital=data["capital"],
            exit_policy=data.get("exit_policy", "keep"), name=data.get("name", ""), reason="created through the API")

    def _change_state(self, request, service, **extra):
        deployment = self.get_object()
        if service is services.deployment_activate:
            _require_change(request, deployment)
        else:
            _require_operate(request, deployment)
        body = StateChangeSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        kwargs = {"deployment": deployment, "reason": body.validated_data["reason"], **extra}
        if service is services.deployment_stop and body.validated_data.get("exit_policy"):
            kwargs["exit_policy"] = body.validated_data["exit_policy"]
        return Response(DeploymentSerializer(service(**kwargs), context={"request": request}).data)

    @extend_schema(request=StateChangeSerializer, responses=DeploymentSerializer)
    @action(detail=True, methods=["post"])
    def activate(self, request, pk=None):
        """Trade from the next closed bar on."""
        return self._change_state(request, services.deployment_activate)

    @extend_schema(request=StateChangeSerializer, responses=DeploymentSerializer)
    @action(detail=True, methods=["post"])
    def pause(self, request, pk=None):
        """No new entries; open positions are still managed."""
        return self._change_state(request, services.deployment_pause)

    @extend_schema(request=StateChangeSerializer, responses=DeploymentSerializer)
    @action(detail=True, methods=["post"])
    def stop(self, request, pk=None):
        """Stop for good, keeping or closing positions (exit_policy)."""
        return self._change_state(request, services.deployment_stop)

    @extend_schema(request=None, responses={200: dict})
    @action(detail=True, methods=["post"])
    def reconcile(self, request, pk=None):
        """Compare the exchange's orders, trades and balances with ours; repair or pause."""
        deployment = self.get_object()
        _require_operate(request, deployment)
        return Response(services.deployment_reconcile(deployment=deployment))

    @extend_schema(request=ReasonSerializer, responses=FlattenResultSerializer)
    @action(detail=True, methods=["post"])
    def flatten(self, request, pk=None):
        """Pause, cancel open entry orders and close the position (through the pre-trade check and
        the broker; paper: fills at the next bar's open). Needs a reason."""
        deployment = self.get_object()
        _require_operate(request, deployment)
        body = ReasonSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        result = _manual(services.deployment_flatten, deployment=deployment, reason=body.validated_data["reason"],
                         actor=request.user)
        return Response(FlattenResultSerializer(result).data)


    @extend_schema(responses=DeploymentPerformanceSerializer)
    @action(detail=True, methods=["get"])
    def performance(self, request, pk=None):
        """Live results (closed trades, win rate, PnL, equity) beside the config's backtest evidence,
        the tracking error against a replay, and the notices (stale data, no risk limits, account)."""
        deployment = self.get_object()
        perf = selectors.performance(Deployment.objects.filter(pk=deployment.pk), by="deployment")[deployment.pk]
        tracking = selectors.tracking_error(deployment)
        data = {**perf.as_dict(), "notices": selectors.deployment_notices(deployment), "tracking_error": tracking,
                "closed_trade_curves": selectors.closed_trade_curves(tracking, deployment.capital)}
        return Response(DeploymentPerformanceSerializer(data).data)


class OrderFilter(django_filters.FilterSet):
    created_after = DateTimeFilter(field_name="created_at", lookup_expr="gte", label="Created at or after (UTC).")
    created_before = DateTimeFilter(field_name="created_at", lookup_expr="lt", label="Created before (UTC).")
    open = django_filters.BooleanFilter(method="filter_open", label="Only open (true) or only settled (false).")

    class Meta:
        model = Order
        fields = ["deployment", "account", "status", "side", "type", "symbol"]

    def filter_open(self, queryset, name, value):
        return queryset.filter(status__in=OPEN_STATUSES) if value else queryset.exclude(status__in=OPEN_STATUSES)


class FillFilter(django_filters.FilterSet):
    deployment = django_filters.ModelChoiceFilter(field_name="order__deployment", queryset=Deployment.objects.all())
    after = DateTimeFilter(field_name="time", lookup_expr="gte", label="Filled at or after (UTC).")
    before = DateTimeFilter(field_name="time", lookup_expr="lt", label="Filled before (UTC).")

    class Meta:
        model = Fill
        fields = ["order", "order__deployment", "account", "source"]


class PositionFilter(django_filters.FilterSet):
    open = django_filters.BooleanFilter(method="filter_open", label="Only open (true) or only flat (false).")

    class Meta:
        model = Position
        fields = ["deployment", "symbol", "side"]

    def filter_open(self, queryset, name, value):
        return queryset.exclude(side="flat") if value else queryset.filter(side="flat")


class SnapshotFilter(django_filters.FilterSet):
    after = DateTimeFilter(field_name="time", lookup_expr="gte", label="At or after (UTC).")
    before = DateTimeFilter(field_name="time", lookup_expr="lt", label="Before (UTC).")

    class Meta:
        model = PortfolioSnapshot
        fields = ["deployment", "account"]


class DeploymentScopedViewSet(ReadOnlyOwnedViewSet):
    """Rows belonging to a deployment: visible when the deployment is."""

    def get_queryset(self):
        deployments = visible_to(self.request.user, Deployment.objects.all())
        return self.queryset.filter(deployment__in=deployments)


class OrderViewSet(DeploymentScopedViewSet):
    queryset = Order.objects.all()
    serializer_class = OrderSerializer
    filterset_class = OrderFilter
    search_fields = ["client_order_id", "exchange_order_id"]

    @extend_schema(request=ReasonSerializer, responses=OrderSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        """Cancel an open order on the exchange, with a reason (needs change on its deployment)."""
        order = self.get_object()
        _require_operate(request, order.deployment)
        body = ReasonSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        order = _manual(services.order_cancel, order=order, reason=body.validated_data["reason"])
        return Response(OrderSerializer(order, context={"request": request}).data)


class FillViewSet(ReadOnlyOwnedViewSet):
    queryset = Fill.objects.select_related("order")
    serializer_class = FillSerializer
    filterset_class = FillFilter

    def get_queryset(self):
        deployments = visible_to(self.request.user, Deployment.objects.all())
        return self.queryset.filter(order__deployment__in=deployments)


class PositionViewSet(DeploymentScopedViewSet):
    queryset = Position.objects.all()
    serializer_class = PositionSerializer
    filterset_class = PositionFilter

    @extend_schema(request=ReasonSerializer, responses=CloseResultSerializer)
    @action(detail=True, methods=["post"])
    def close(self, request, pk=None):
        """Close the position with a market order through the pre-trade check and the deployment's
        broker (paper: fills at the next bar's open). Needs a reason; 'order' is empty when it was
        already flat."""
        position = self.get_object()
        _require_operate(request, position.deployment)
        body = ReasonSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        order = _manual(services.position_close, position=position, reason=body.validated_data["reason"],
                        actor=request.user)
        return Response(CloseResultSerializer({"order": order}, context={"request": request}).data)


class PortfolioSnapshotViewSet(ReadOnlyOwnedViewSet):
    queryset = PortfolioSnapshot.objects.all()
    serializer_class = PortfolioSnapshotSerializer
    filterset_class = SnapshotFilter

    def get_queryset(self):
        return selectors.snapshots_visible(self.request.user)

    @extend_schema(parameters=[PortfolioHistoryQuerySerializer], responses=PortfolioHistorySerializer)
    @action(detail=False, methods=["get"])
    def history(self, request):
        """Equity over time, downsampled to about `max_points`: one deployment's, or the sum of every
        deployment you may see (of one account, if given)."""
        query = query_params(request, PortfolioHistoryQuerySerializer)
        deployments = visible_to(request.user, Deployment.objects.all())
        if query.get("deployment"):
            deployments = deployments.filter(pk=query["deployment"].pk)
        if query.get("account"):
            deployments = deployments.filter(account=query["account"])
        snapshots = PortfolioSnapshot.objects.filter(deployment__in=deployments)
        data = selectors.equity_history(snapshots, max_points=query["max_points"], start=query.get("start"),
                                        end=query.get("end"))
        quotes = set(deployments.values_list("config__market__quote", flat=True).distinct()[:2])
        data["quote"] = quotes.pop() if len(quotes) == 1 else ("mixed" if quotes else "")
        return Response(PortfolioHistorySerializer(data).data)


class PerformanceViewSet(viewsets.ViewSet):
    """Per strategy config: live trades, win rate and PnL of its deployments you may see, beside
    its latest backtest evidence."""

    permission_classes = [permissions.IsAuthenticated]
    serializer_class = ConfigPerformanceSerializer

    @extend_schema(parameters=[PerformanceQuerySerializer], responses=ConfigPerformanceSerializer(many=True))
    def list(self, request):
        query = query_params(request, PerformanceQuerySerializer)
        config = query.get("config")
        rows = selectors.config_performance(request.user, config_id=config.pk if config else None,
                                            mode=query.get("mode"))
        return Response(ConfigPerformanceSerializer(rows, many=True).data)


def register(router):
    router.register("trading/accounts", ExchangeAccountViewSet, basename="trading-account")
    router.register("trading/deployments", DeploymentViewSet, basename="trading-deployment")
    router.register("trading/orders", OrderViewSet, basename="trading-order")
    router.register("trading/fills", FillViewSet, basename="trading-fill")
    router.register("trading/positions", PositionViewSet, basename="trading-position")
    router.register("trading/portfolio", PortfolioSnapshotViewSet, basename="trading-portfolio")
    router.register("trading/performance", PerformanceViewSet, basename="trading-performance")
