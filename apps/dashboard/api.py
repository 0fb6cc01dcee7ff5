"""API: the system status behind the health page (operators only)."""
from __future__ import annotations

from django.urls import path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import permissions
from rest_framework.decorators import api_view, permission_classes
from rest_framework.response import Response

from tradepulse.core.permissions import sees_everything

from . import status


class IsOperator(permissions.BasePermission):
    message = "The system status is for operators."

    def has_permission(self, request, view):
        return sees_everything(request.user)


@extend_schema(responses={200: OpenApiTypes.OBJECT}, description=(
    "The platform's state: the last scheduled checks and each component's recent history (statuses, "
    "latency in ms, 24 h uptime as a 0-1 share), last beat (age in seconds), Celery workers and queue depths "
    "(tasks waiting), exchange connectivity per account, data freshness per active deployment (late_s: seconds "
    "since the newest stored bar should have closed), request counts, 5xx errors and latency in ms over the "
    "last 15 minutes, recent server errors with their request ids, and platform figures (download rows/s, "
    "backtests and trials per minute, orders by status, rejections, open alerts). Times are UTC."))
@api_view(["GET"])
@permission_classes([permissions.IsAuthenticated, IsOperator])
def system_status(request):
    return Response(status.system_status())


urlpatterns = [path("system/status/", system_status, name="system-status")]
