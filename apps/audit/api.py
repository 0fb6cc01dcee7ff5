"""API: audit events — read-only, filterable, CSV export. Operators see all; others their own."""
from __future__ import annotations

import django_filters
from django.db.models import Q
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import permissions, serializers, viewsets
from rest_framework.decorators import action

from tradepulse.core.filters import DateTimeFilter
from tradepulse.core.csvexport import csv_stream
from tradepulse.core.permissions import sees_everything

from .models import AuditEvent


class AuditEventSerializer(serializers.ModelSerializer):
    target_type = serializers.SerializerMethodField()

    class Meta:
        model = AuditEvent
        fields = ["id", "created_at", "actor", "actor_label", "via", "action", "target_type", "target_id",
                  "target_repr", "changes", "reason", "metadata", "request_id", "client_request_id", "ip",
                  "user_agent"]

    def get_target_type(self, event) -> str | None:
        return f"{event.target_type.app_label}.{event.target_type.model}" if event.target_type_id else None


class AuditEventFilter(django_filters.FilterSet):
    action = django_filters.CharFilter(lookup_expr="startswith")
    actor = django_filters.CharFilter(field_name="actor_label")
    request_id = django_filters.CharFilter()
    client_request_id = django_filters.CharFilter()
    target_type = django_filters.CharFilter(method="filter_target_type", help_text="app_label.model")
    target_id = django_filters.CharFilter()
    since = DateTimeFilter(field_name="created_at", lookup_expr="gte")
    until = DateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = AuditEvent
        fields = ["action", "actor", "request_id", "client_request_id", "target_type", "target_id", "since", "until"]

    def filter_target_type(self, queryset, name, value):
        app_label, _, model = value.partition(".")
        return queryset.filter(target_type__app_label=app_label, target_type__model=model)


def audit_events_for(user):
    """Operators see every event; others the events they did and those about their objects."""
    qs = AuditEvent.objects.select_related("target_type")
    if sees_everything(user):
        return qs
    return qs.filter(Q(actor_id=user.pk) | Q(owner_id=user.pk))


class AuditEventViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = AuditEventSerializer
    permission_classes = [permissions.IsAuthenticated]
    filterset_class = AuditEventFilter
    search_fields = ["action", "actor_label", "target_repr", "reason", "request_id"]
    ordering_fields = ["created_at", "action", "actor_label"]

    def get_queryset(self):
        return audit_events_for(self.request.user)

    @extend_schema(responses={(200, "text/csv"): OpenApiTypes.STR})
    @action(detail=False, methods=["get"], url_path="export")
    def export(self, request):
        """The filtered events as CSV (all matching rows, streamed; formula-like cells escaped)."""
        queryset = self.filter_queryset(self.get_queryset())
        columns = ["created_at", "actor_label", "via", "action", "target_repr", "target_id", "reason", "changes",
                   "request_id", "ip"]
        rows = ([getattr(event, c) for c in columns] for event in queryset.iterator(chunk_size=2000))
        return csv_stream(columns, rows, "audit-events.csv")


def register(router):
    router.register("audit-events", AuditEventViewSet, basename="audit-event")
