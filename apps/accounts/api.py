"""API: the current user, their quotas, and personal API tokens (create with expiry, list, revoke)."""
from __future__ import annotations

from django.conf import settings
from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, permissions, serializers, status, viewsets
from rest_framework.decorators import api_view, permission_classes
from rest_framework.response import Response

from . import quotas, services
from .models import ApiToken, validate_timezone


class MeSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    username = serializers.CharField(read_only=True)
    email = serializers.CharField(read_only=True, help_text="May be empty: an address is optional.")
    roles = serializers.ListField(child=serializers.CharField(), read_only=True, source="role_names")
    is_staff = serializers.BooleanField(read_only=True)
    sees_everything = serializers.SerializerMethodField()
    timezone = serializers.CharField(validators=[validate_timezone], required=False)

    def get_sees_everything(self, user) -> bool:
        from tradepulse.core.permissions import sees_everything

        return sees_everything(user)


@extend_schema(responses=MeSerializer, request=MeSerializer)
@api_view(["GET", "PATCH"])
@permission_classes([permissions.IsAuthenticated])
def me(request):
    if request.method == "PATCH":
        serializer = MeSerializer(request.user, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        services.user_update_preferences(user=request.user, timezone_name=serializer.validated_data.get("timezone"))
    return Response(MeSerializer(request.user).data)


class QuotaSerializer(serializers.Serializer):
    key = serializers.CharField(help_text="Which limit, e.g. training_trials.")
    label = serializers.CharField(help_text="What it limits, in words.")
    value = serializers.IntegerField(allow_null=True, help_text="The limit (a count); null = no limit applies.")
    source = serializers.CharField(help_text='Where the limit comes from: "role Trader" or "your own limit".')
    used = serializers.IntegerField(allow_null=True, help_text="Jobs of this kind queued or running now "
                                                              "(concurrency limits); null for per-request limits.")
    concurrent = serializers.BooleanField(help_text="A limit on jobs at once (true) or on one request (false).")


@extend_schema(responses=QuotaSerializer(many=True))
@api_view(["GET"])
@permission_classes([permissions.IsAuthenticated])
def my_quotas(request):
    """Your limits on expensive work, where each comes from, and how much of the concurrency
    limits you use now. Requests beyond them are refused with a 400 naming the limit."""
    return Response(QuotaSerializer(quotas.limits_for(request.user), many=True).data)


class ApiTokenSerializer(serializers.ModelSerializer):
    # The limits (1 to the maximum lifetime setting) are checked by services.token_create.
    expires_in_days = serializers.IntegerField(write_only=True, required=False, allow_null=True,
                                               default=lambda: settings.REST_KNOX["TOKEN_TTL"].days)
    expired = serializers.SerializerMethodField()

    class Meta:
        model = ApiToken
        fields = ["token_key", "name", "created", "expiry", "last_used_at", "expired", "expires_in_days"]
        read_only_fields = ["token_key", "created", "expiry", "last_used_at"]

    def get_expired(self, token) -> bool:
        from django.utils import timezone

        return token.expiry is not None and token.expiry <= timezone.now()


class ApiTokenViewSet(mixins.ListModelMixin, mixins.CreateModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet):
    """Your own API tokens. The token itself is returned once, by create, and never again."""

    serializer_class = ApiTokenSerializer
    lookup_field = "token_key"
    lookup_value_regex = "[A-Za-z0-9_-]+"
    queryset = ApiToken.objects.none()  # for the schema; get_queryset narrows to the user
    permission_classes = [permissions.IsAuthenticated]

    def get_queryset(self):
        return ApiToken.objects.filter(user=self.request.user)

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        token, plain = services.token_create(
            user=request.user, name=serializer.validated_data["name"],
            expires_in_days=serializer.validated_data.get("expires_in_days"),
            using_token=request.auth if isinstance(request.auth, ApiToken) else None,
        )
        data = ApiTokenSerializer(token).data
        data["token"] = plain
        return Response(data, status=status.HTTP_201_CREATED)

    def perform_destroy(self, instance):
        services.token_revoke(token=instance)


def register(router):
    router.register("tokens", ApiTokenViewSet, basename="token")


urlpatterns = [path("me/", me, name="me"), path("me/quotas/", my_quotas, name="me-quotas")]
