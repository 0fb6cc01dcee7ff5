"""Put the authenticated user into the acting context; require 2FA for staff if configured."""
from __future__ import annotations

from dataclasses import replace

from django.conf import settings
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone

from tradepulse.core import context


class UserContextMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            token = context.set_context(replace(context.current(), user_id=user.pk, actor_label=user.get_username()))
            timezone.activate(user.timezone)  # times shown in the user's zone; stored in UTC
            try:
                response = self._guard(request) or self.get_response(request)
            finally:
                context.reset_context(token)
                timezone.deactivate()
            return response
        return self.get_response(request)

    def _guard(self, request):
        """With TRADEPULSE_REQUIRE_2FA_FOR_STAFF, staff reach the admin only with a verified second factor."""
        if not settings.REQUIRE_2FA_FOR_STAFF or not request.user.is_staff:
            return None
        if request.path.startswith("/admin/") and not request.user.is_verified():
            return redirect(f"{reverse('accounts:security')}?next={request.path}")
        return None
