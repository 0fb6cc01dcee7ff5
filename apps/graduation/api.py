"""API: graduation policies (operators edit, with a reason), decisions, live requests (approve /
reject by a second person), and the pipeline: configs as board cards with promote, demote,
retire and request-live. Decisions and live requests are visible exactly when their config is."""
from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, permissions, serializers
from rest_framework.decorators import action
from rest_framework.response import Response

from apps.strategies.models import Stage, StrategyConfig
from apps.trading.models import ExchangeAccount
from tradepulse.core.api import ObjectActionPermission, OwnedViewSet, ReadOnlyOwnedViewSet, query_params
from tradepulse.core.permissions import can, visible_to

from . import selectors, services
from .models import GraduationDecision, GraduationPolicy, LiveRequest
from .serializers import (BoardCardSerializer, DecisionSerializer, DemoteSerializer, LiveRequestSerializer,
                          PolicySerializer, PolicyUpdateSerializer, PromoteSerializer, ReasonSerializer)


class PolicyViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.UpdateModelMixin, OwnedViewSet):
    """Policies per transition. Everyone signed in reads them; operators change them (PATCH with a
    `reason`, audited). Thresholds left empty (null) are not applied."""

    http_method_names = ["get", "patch", "head", "options"]
    queryset = GraduationPolicy.objects.select_related("updated_by")
    serializer_class = PolicySerializer
    filterset_fields = ["kind", "from_stage", "automatic"]
    pagination_class = None

    @extend_schema(request=PolicyUpdateSerializer, responses=PolicySerializer)
    def partial_update(self, request, *args, **kwargs):
        policy = self.get_object()
        body = PolicyUpdateSerializer(policy, data=request.data, partial=True)
        body.is_valid(raise_exception=True)
        changes = dict(body.validated_data)
        reason = changes.pop("reason", "")  # required: the service names it when missing
        policy = services.policy_update(policy=policy, actor=request.user, reason=reason, **changes)
        return Response(PolicySerializer(policy).data)


class DecisionViewSet(ReadOnlyOwnedViewSet):
    """Graduation decisions, newest first, each with every criterion's value, threshold and verdict."""

    queryset = GraduationDecision.objects.select_related("config__owner", "actor")
    serializer_class = DecisionSerializer
    filterset_fields = ["config", "outcome", "decided_by", "from_stage", "to_stage"]


class LiveRequestViewSet(ReadOnlyOwnedViewSet):
    """Requests to go live. Approved or rejected by someone with graduation.approve_live who is
    not the requester (four-eyes)."""

    queryset = LiveRequest.objects.select_related("config__owner", "requested_by", "decided_by")
    serializer_class = LiveRequestSerializer
    filterset_fields = ["config", "status"]
    # Approving and rejecting are decided by the service (graduation.approve_live, not the requester).
    permission_classes = [permissions.IsAuthenticated, OwnedViewSet.permission_classes[1]]

    @extend_schema(request=ReasonSerializer, responses=DecisionSerializer)
    @action(detail=True, methods=["post"])
    def approve(self, request, pk=None):
        """The second person approves: the config goes live."""
        live_request = self.get_object()
        body = ReasonSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        decision = services.live_request_approve(request=live_request, actor=request.user,
                                                 reason=body.validated_data["reason"])
        return Response(DecisionSerializer(decision).data)

    @extend_schema(request=ReasonSerializer, responses=LiveRequestSerializer)
    @action(detail=True, methods=["post"])
    def reject(self, request, pk=None):
        """The second person refuses: the config stays on testnet."""
        live_request = self.get_object()
        body = ReasonSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        live_request = services.live_request_reject(request=live_request, actor=request.user,
                                                    reason=body.validated_data["reason"])
        return Response(LiveRequestSerializer(live_request).data)


class PipelinePermission(ObjectActionPermission):
    """Promote and request-live need change on the config (its owner, or shared to change);
    demote and retire take a config out of trading, which operators may do to anyone's."""

    ACTIONS = {"promote": "change", "request_live": "change", "demote": "operate", "retire": "operate"}

    def has_object_permission(self, request, view, obj):
        if request.method in permissions.SAFE_METHODS:
            return True
        return can(request.user, self.ACTIONS.get(getattr(view, "action", ""), "change"), obj)


class BoardQuery(serializers.Serializer):
    owner = serializers.CharField(required=False, max_length=150, help_text="Owner's username.")
    strategy = serializers.CharField(required=False, max_length=50, help_text="Strategy key.")
    market = serializers.CharField(required=False, max_length=64, help_text="Market symbol, e.g. BTC/USDT.")
    stage = serializers.ChoiceField(choices=[s for s in Stage.values if s != Stage.RETIRED], required=False)


class PipelineViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OwnedViewSet):
    """The pipeline board: every config you may see that is not retired, with its stage, time in
    stage and key research evidence; and the graduation actions, each with a required reason."""

    queryset = StrategyConfig.objects.select_related("market__exchange", "owner")
    serializer_class = BoardCardSerializer
    permission_classes = [permissions.IsAuthenticated, OwnedViewSet.permission_classes[1], PipelinePermission]
    pagination_class = None
    filter_backends = []

    @extend_schema(parameters=[BoardQuery], responses=BoardCardSerializer(many=True))
    def list(self, request):
        q = query_params(request, BoardQuery)
        cards = selectors.board(request.user, owner=q.get("owner", ""), strategy=q.get("strategy", ""),
                                market=q.get("market", ""))
        if q.get("stage"):
            cards = [c for c in cards if c["config"].stage == q["stage"]]
        return Response(BoardCardSerializer(cards, many=True).data)

    def retrieve(self, request, pk=None):
        return Response(BoardCardSerializer(selectors.card(self.get_object(), request.user)).data)

    @extend_schema(request=PromoteSerializer, responses=DecisionSerializer)
    @action(detail=True, methods=["post"])
    def promote(self, request, pk=None):
        """One stage up, held against the transition's policy (override records that you answer for it)."""
        config = self.get_object()
        body = PromoteSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        account = None
        if body.validated_data.get("account") is not None:
            account = visible_to(request.user, ExchangeAccount.objects.filter(pk=body.validated_data["account"])).first()
            if account is None:
                raise DjangoValidationError({"account": "Unknown exchange account."})
        decision = services.config_promote(config=config, actor=request.user, reason=body.validated_data["reason"],
                                           override=body.validated_data["override"], account=account)
        return Response(DecisionSerializer(decision).data)

    @extend_schema(request=DemoteSerializer, responses=DecisionSerializer)
    @action(detail=True, methods=["post"])
    def demote(self, request, pk=None):
        """Down to a lower stage; deployments above it are paused."""
        config = self.get_object()
        body = DemoteSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        decision = services.config_demote(config=config, actor=request.user, reason=body.validated_data["reason"],
                                          to_stage=body.validated_data.get("to_stage"))
        return Response(DecisionSerializer(decision).data)

    @extend_schema(request=ReasonSerializer, responses=DecisionSerializer)
    @action(detail=True, methods=["post"])
    def retire(self, request, pk=None):
        """Off the ladder; every active deployment is paused."""
        config = self.get_object()
        body = ReasonSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        decision = services.config_retire(config=config, actor=request.user, reason=body.validated_data["reason"])
        return Response(DecisionSerializer(decision).data)

    @extend_schema(request=ReasonSerializer, responses=LiveRequestSerializer)
    @action(detail=True, methods=["post"], url_path="request-live")
    def request_live(self, request, pk=None):
        """Ask for a testnet config to go live; a second person approves (live-requests/{id}/approve/)."""
        config = self.get_object()
        body = ReasonSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        live_request = services.live_request_create(config=config, actor=request.user,
                                                    reason=body.validated_data["reason"])
        return Response(LiveRequestSerializer(live_request).data, status=201)


def register(router):
    router.register("graduation/policies", PolicyViewSet, basename="graduation-policy")
    router.register("graduation/decisions", DecisionViewSet, basename="graduation-decision")
    router.register("graduation/live-requests", LiveRequestViewSet, basename="graduation-live-request")
    router.register("graduation/configs", PipelineViewSet, basename="graduation-config")
