"""API: backups (operators): list, and "back up now". Restores are a command (`manage.py restore`):
replacing the database is not a thing to do over HTTP."""
from __future__ import annotations

import json
from zoneinfo import ZoneInfo

from django.core.serializers.json import DjangoJSONEncoder

from django.urls import path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, permissions, status, viewsets
from rest_framework import serializers as drf_serializers
from rest_framework.decorators import api_view, permission_classes
from rest_framework.response import Response

from apps.accounts.models import validate_timezone
from tradepulse.core.api import query_params
from tradepulse.core.csvexport import csv_stream
from tradepulse.core.permissions import sees_everything

from . import configio, reports, services
from .models import Backup
from .serializers import BackupSerializer


class IsOperator(permissions.BasePermission):
    message = "Backups are for operators."

    def has_permission(self, request, view):
        return sees_everything(request.user)


class BackupViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin,
                    viewsets.GenericViewSet):
    """Backups of the whole database. POST takes one now (queued for a worker; watch `state`)."""

    queryset = Backup.objects.select_related("requested_by")
    serializer_class = BackupSerializer
    permission_classes = [permissions.IsAuthenticated, IsOperator]
    filterset_fields = ["state", "kind"]

    @extend_schema(request=None, responses={202: BackupSerializer})
    def create(self, request, *args, **kwargs):
        backup = services.backup_create(user=request.user, kind="manual", reason="back up now (API)")
        return Response(BackupSerializer(backup).data, status=status.HTTP_202_ACCEPTED)


def register(router):
    router.register("backups", BackupViewSet, basename="backup")


# --- exports and the tax report ----------------------------------------------------------------------------

class ExportParams(drf_serializers.Serializer):
    timezone = drf_serializers.CharField(required=False, validators=[validate_timezone],
                                         help_text="IANA zone for the times (default: yours).")


class TaxParams(ExportParams):
    year = drf_serializers.IntegerField(min_value=1970, max_value=2100,
                                        help_text="Financial year: the calendar year it starts in.")
    first_month = drf_serializers.IntegerField(min_value=1, max_value=12, default=1,
                                               help_text="Month the financial year starts (1 = January, 4 = April).")
    output = drf_serializers.ChoiceField(choices=["json", "csv"], default="json", help_text="json, or csv (disposals)")


def _zone(request, params) -> ZoneInfo:
    return ZoneInfo(params.get("timezone") or request.user.timezone or "UTC")


def _export(kind, rows_for):
    @extend_schema(parameters=[ExportParams], responses={(200, "text/csv"): OpenApiTypes.STR},
                   description=f"Your {kind} as CSV, times in your time zone (or `timezone`); amounts in the "
                               "market's units, values in its quote currency.")
    @api_view(["GET"])
    @permission_classes([permissions.IsAuthenticated])
    def view(request):
        params = query_params(request, ExportParams)
        header, rows = rows_for(request.user, _zone(request, params))
        return csv_stream(header, rows, f"tradepulse-{kind}.csv")

    view.__name__ = f"export_{kind}"
    return view


@extend_schema(parameters=[TaxParams], responses={200: OpenApiTypes.OBJECT, (200, "text/csv"): OpenApiTypes.STR},
               description="Realised gains of one financial year by FIFO, per account and symbol: disposals (amount "
                           "in base units; cost, proceeds, gain in the quote currency), totals per quote currency, "
                           "sells without recorded holdings, fees paid in other currencies.")
@api_view(["GET"])
@permission_classes([permissions.IsAuthenticated])
def tax_report(request):
    params = query_params(request, TaxParams)
    report = reports.fifo_report(user=request.user, year=params["year"], first_month=params["first_month"],
                                 zone=_zone(request, params))
    if params["output"] == "csv":
        rows = ([d[c] for c in reports.TAX_HEADER] for d in report["disposals"])
        return csv_stream(reports.TAX_HEADER, rows, f"tradepulse-gains-{params['year']}.csv")
    return Response(json.loads(json.dumps(report, cls=DjangoJSONEncoder)))  # Decimals as exact strings


urlpatterns = [
    path("exports/trades/", _export("trades", reports.trade_rows), name="export-trades"),
    path("exports/orders/", _export("orders", reports.order_rows), name="export-orders"),
    path("exports/portfolio/", _export("portfolio", reports.portfolio_rows), name="export-portfolio"),
    path("exports/tax/", tax_report, name="export-tax"),
]


class ConfigImportSerializer(drf_serializers.Serializer):
    document = drf_serializers.JSONField(help_text='The configuration document (format "tradepulse.config").')
    apply = drf_serializers.BooleanField(default=False, help_text="false: preview only; true: carry it out.")
    reason = drf_serializers.CharField(required=False, allow_blank=True, default="", max_length=500)


@extend_schema(responses={200: OpenApiTypes.OBJECT},
               description="Your strategy configs, your own risk limits and alert channels as one versioned JSON "
                           "document (no secrets: webhook URLs and bot tokens are never exported).")
@api_view(["GET"])
@permission_classes([permissions.IsAuthenticated])
def config_export(request):
    return Response(configio.config_export(user=request.user))


@extend_schema(request=ConfigImportSerializer, responses={200: OpenApiTypes.OBJECT},
               description="Validate a configuration document and preview what it would create, update or skip; "
                           "with apply=true carry it out (all or nothing; refused while the plan has errors).")
@api_view(["POST"])
@permission_classes([permissions.IsAuthenticated])
def config_import(request):
    body = ConfigImportSerializer(data=request.data)
    body.is_valid(raise_exception=True)
    result = configio.config_import(user=request.user, document=body.validated_data["document"],
                                    apply=body.validated_data["apply"], reason=body.validated_data["reason"])
    return Response(json.loads(json.dumps(result, cls=DjangoJSONEncoder)))


urlpatterns += [
    path("config/export/", config_export, name="config-export"),
    path("config/import/", config_import, name="config-import"),
]
