"""API authentication: knox tokens that also set the acting user for audit and logs."""
from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from django.conf import settings
from django.utils import timezone
from knox.auth import TokenAuthentication
from rest_framework import exceptions

from tradepulse.core import context


class ContextTokenAuthentication(TokenAuthentication):
    """knox token auth that also records the user as the acting user and stamps last use."""

    def authenticate_credentials(self, token):
        user, auth_token = super().authenticate_credentials(token)
        # Tokens made before the maximum lifetime existed (or before it was lowered) end with it too.
        max_age = timedelta(days=settings.API_TOKEN_MAX_DAYS)
        if auth_token.created < timezone.now() - max_age:
            days = f"{max_age.days} day" + ("s" if max_age.days != 1 else "")
            raise exceptions.AuthenticationFailed(f"Token is older than the maximum lifetime ({days}): create a new one.")
        context.set_context(replace(context.current(), user_id=user.pk, actor_label=user.get_username()))
        type(auth_token).objects.filter(pk=auth_token.pk).update(last_used_at=timezone.now())
        return user, auth_token


try:  # describe the token scheme in the OpenAPI schema
    from drf_spectacular.extensions import OpenApiAuthenticationExtension

    class ContextTokenAuthenticationScheme(OpenApiAuthenticationExtension):
        target_class = "tradepulse.core.auth.ContextTokenAuthentication"
        name = "tokenAuth"

        def get_security_definition(self, auto_schema):
            return {"type": "apiKey", "in": "header", "name": "Authorization",
                    "description": "`Token <your token>` — create one under API tokens in the dashboard."}
except ImportError:  # pragma: no cover
    pass
