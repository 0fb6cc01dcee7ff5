"""API: alerts (list, acknowledge, resolve, summary), your alert channels (with "send a test"),
and the deliveries made on them (with retry). Another user's alert, channel or delivery is 404."""
from __future__ import annotations

import django_filters
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, permissions, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from tradepulse.core.api import ModelPermissions, OwnedModelViewSet, ReadOnlyOwnedViewSet

from . import selectors, services
from .models import Alert, AlertState, Channel, Delivery
from .serializers import (AlertActionSerializer, AlertSerializer, AlertSummarySerializer, ChannelSerializer,
                          DeliverySerializer)


class AlertFilter(django_filters.FilterSet):
    state = django_filters.MultipleChoiceFilter(choices=AlertState.choices,
                                                help_text="One or more of open, acknowledged, resolved.")

    class Meta:
        model = Alert
        fields = ["state", "severity", "source"]


class AlertViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Alerts you may see: about your objects (or ones shared with you); system alerts for
    operators. Times are UTC; `count` is how often it was raised while unresolved."""

    queryset = Alert.objects.select_related("target_type", "acknowledged_by", "resolved_by")
    serializer_class = AlertSerializer
    permission_classes = [permissions.IsAuthenticated, ModelPermissions]
    filterset_class = AlertFilter
    search_fields = ["title", "message", "target_repr"]
    ordering_fields = ["last_seen", "first_seen", "count", "severity"]

    def get_queryset(self):
        return selectors.alerts_visible_to(self.request.user, super().get_queryset())

    def _act(self, request, service):
        body = AlertActionSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        alert = service(alert=self.get_object(), user=request.user, reason=body.validated_data["reason"])
        return Response(AlertSerializer(alert).data)

    @extend_schema(request=AlertActionSerializer, responses=AlertSerializer)
    @action(detail=True, methods=["post"])
    def acknowledge(self, request, pk=None):
        """Open → acknowledged: you have seen it (it leaves the unread count)."""
        return self._act(request, services.alert_acknowledge)

    @extend_schema(request=AlertActionSerializer, responses=AlertSerializer)
    @action(detail=True, methods=["post"])
    def resolve(self, request, pk=None):
        """Close it by hand, with a reason."""
        return self._act(request, services.alert_close)

    @extend_schema(responses=AlertSummarySerializer)
    @action(detail=False, methods=["get"])
    def summary(self, request):
        """The counts behind the top bar's badge."""
        visible = self.get_queryset()
        unresolved = visible.exclude(state=AlertState.RESOLVED)
        by_severity = {s: 0 for s in ("info", "warning", "error", "critical")}
        for severity in unresolved.values_list("severity", flat=True):
            by_severity[severity] += 1
        return Response({"unread": visible.filter(state=AlertState.OPEN).count(), "open": unresolved.count(),
                         "by_severity": by_severity})


class ChannelViewSet(OwnedModelViewSet):
    """Your alert channels. `url` and `bot_token` are write-only (encrypted; `secret_hint` tells
    them apart); a blank or missing secret on update keeps the stored one."""

    queryset = Channel.objects.select_related("owner")
    serializer_class = ChannelSerializer
    filterset_fields = ["kind", "enabled"]
    search_fields = ["name"]

    def perform_create(self, serializer):
        serializer.instance = services.channel_create(owner=self.request.user, reason="created through the API",
                                                      **serializer.validated_data)

    def perform_update(self, serializer):
        serializer.instance = services.channel_update(channel=serializer.instance, reason="changed through the API",
                                                      **serializer.validated_data)

    def perform_destroy(self, instance):
        services.channel_delete(channel=instance, reason="deleted through the API")

    @extend_schema(request=None, responses=DeliverySerializer)
    @action(detail=True, methods=["post"])
    def test(self, request, pk=None):
        """Send a test message on this channel now; the delivery says whether it arrived."""
        return Response(DeliverySerializer(services.channel_test(channel=self.get_object())).data)


class DeliveryViewSet(ReadOnlyOwnedViewSet):
    """Deliveries on your channels: state, attempts, next try, last error (never a secret)."""

    queryset = Delivery.objects.select_related("channel", "alert")
    serializer_class = DeliverySerializer
    filterset_fields = ["channel", "alert", "state", "is_test"]

    @extend_schema(request=AlertActionSerializer, responses=DeliverySerializer)
    @action(detail=True, methods=["post"])
    def retry(self, request, pk=None):
        """Send a failed or skipped delivery again now."""
        body = AlertActionSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        delivery = services.delivery_retry(delivery=self.get_object(), user=request.user,
                                           reason=body.validated_data["reason"])
        return Response(DeliverySerializer(delivery).data)


def register(router):
    router.register("alerts", AlertViewSet, basename="alert")
    router.register("alert-channels", ChannelViewSet, basename="alert-channel")
    router.register("alert-deliveries", DeliveryViewSet, basename="alert-delivery")
