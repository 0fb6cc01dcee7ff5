"""API building blocks shared by every app: the base viewset, pagination, errors, auth.

`OwnedViewSet` narrows every queryset with `permissions.visible_to`, so another user's object
is a 404, and checks change/delete per object. `ScopedPrimaryKeyRelatedField` applies the same
rule to ids sent in a request body: an id you may not see is "does not exist".
"""
from __future__ import annotations

import logging
from datetime import UTC


from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from drf_spectacular.utils import extend_schema_field
from rest_framework import exceptions, mixins, permissions, serializers, status, viewsets
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from tradepulse.core.permissions import OPERATIONAL_API_ACTIONS, can, visible_to
from tradepulse.core import context
from tradepulse.core.times import check_datetime

log = logging.getLogger(__name__)


def exception_handler(exc, ctx):
    """Every API error is JSON: {"error": {"code", "message", "detail", "request_id"}}."""
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(getattr(exc, "message_dict", None) or {"non_field_errors": exc.messages})
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)  # a service's reason reaches the caller
    response = drf_exception_handler(exc, ctx)
    request_id = context.current().request_id
    if response is None:
        log.exception("unhandled API error")
        return Response(
            {"error": {"code": "server_error", "message": "Internal error; quote the request id when reporting it.",
                       "request_id": request_id}},
            status=status.HTTP_500_INTERNAL_SERVER_ERROR,
        )
    detail = response.data
    code = getattr(exc, "default_code", "error")
    message = _message(detail)
    response.data = {"error": {"code": code, "message": message, "detail": detail, "request_id": request_id}}
    return response


def _message(detail) -> str:
    """One readable line from DRF's nested error detail: 'field: problem; other: problem'."""
    if isinstance(detail, dict):
        if set(detail) == {"detail"}:
            return str(detail["detail"])
        parts = []
        for field, problems in detail.items():
            text = _message(problems)
            parts.append(text if field in ("non_field_errors", "detail") else f"{field}: {text}")
        return "; ".join(parts)
    if isinstance(detail, list):
        return "; ".join(_message(d) for d in detail)
    return str(detail)


class ModelPermissions(permissions.DjangoModelPermissions):
    """Model permissions for writes (roles); reads need the view permission too."""

    perms_map = {
        **permissions.DjangoModelPermissions.perms_map,
        "GET": ["%(app_label)s.view_%(model_name)s"],
        "HEAD": ["%(app_label)s.view_%(model_name)s"],
        "OPTIONS": [],
    }


class ObjectActionPermission(permissions.BasePermission):
    """Per object: deleting, changing or operating needs that right on the object (permissions.py)."""

    def has_object_permission(self, request, view, obj):
        if request.method in permissions.SAFE_METHODS:
            return True
        if request.method == "DELETE":
            action = "delete"
        elif getattr(view, "action", None) in OPERATIONAL_API_ACTIONS:
            action = "operate"
        else:
            action = "change"
        return can(request.user, action, obj)


class OwnedViewSet(viewsets.GenericViewSet):
    """The one base viewset: querysets narrowed to what the user may see."""

    permission_classes = [permissions.IsAuthenticated, ModelPermissions, ObjectActionPermission]

    def get_queryset(self):
        return visible_to(self.request.user, super().get_queryset())


class OwnedModelViewSet(mixins.CreateModelMixin, mixins.RetrieveModelMixin, mixins.UpdateModelMixin,
                        mixins.DestroyModelMixin, mixins.ListModelMixin, OwnedViewSet):
    pass


class ReadOnlyOwnedViewSet(mixins.RetrieveModelMixin, mixins.ListModelMixin, OwnedViewSet):
    pass


def query_params(request, serializer_class) -> dict:
    """The one way a view reads its query parameters: `serializer_class` (also given to
    `extend_schema(parameters=[...])`, so the schema documents exactly what is parsed) validates
    them; a bad value is a 400 naming the parameter, never an exception from int() or the database."""
    serializer = serializer_class(data=request.query_params, context={"request": request})
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class ScopedPrimaryKeyRelatedField(serializers.PrimaryKeyRelatedField):
    """A related id the requesting user may not see is rejected as if it did not exist."""

    def get_queryset(self):
        queryset = super().get_queryset()
        request = self.context.get("request")
        return visible_to(request.user, queryset) if request is not None else queryset.none()


@extend_schema_field({"type": "string", "pattern": r"^([01]\d|2[0-3]):[0-5]\d$", "example": "22:00"})
class LocalTimeField(serializers.TimeField):
    """A wall-clock time of day with no zone (e.g. quiet hours, in the user's zone): read as HH:MM
    or HH:MM:SS, returned as HH:MM. Documented by a pattern: OpenAPI's `time` format is RFC
    3339's full-time, which needs an offset, so a plain "22:00" would not match it."""

    def __init__(self, **kwargs):
        kwargs.setdefault("format", "%H:%M")
        super().__init__(**kwargs)


class DateTimeField(serializers.DateTimeField):
    """A date-time from a request body: ISO-8601, within 1970-2100, returned in UTC (so no
    offset the database cannot store, e.g. +22:08, ever reaches a query)."""

    def to_internal_value(self, value):
        parsed = super().to_internal_value(value)
        try:
            return check_datetime(parsed).astimezone(UTC)
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from None
