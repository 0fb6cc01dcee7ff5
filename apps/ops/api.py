"""API: backups (operators): list, and "back up now". Restores are a command (`manage.py restore`):
replacing the database is not a thing to do over HTTP."""
from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, permissions, status, viewsets
from rest_framework.response import Response

from tradepulse.core.permissions import sees_everything

from . import services
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
