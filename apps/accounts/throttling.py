"""Login throttling: django-axes per username + IP, plus a limit per IP across usernames.

axes locks a username/IP pair after AXES_FAILURE_LIMIT failures. On its own that lets one
address try a few passwords against every username (password spraying); this handler also
locks an address out once it has failed LOGIN_IP_FAILURE_LIMIT times within the cool-off,
whatever usernames it tried. Its failures are counted from axes' own attempt rows, so the
cool-off, the reset and the admin's "unlock" work the same for both limits.
"""
from __future__ import annotations

import logging

from axes.handlers.database import AxesDatabaseHandler
from axes.helpers import get_client_ip_address
from axes.models import AccessAttempt
from django.conf import settings
from django.db.models import Sum
from django.utils import timezone

log = logging.getLogger(__name__)


def ip_failures(ip_address: str | None) -> int:
    """Failed logins from this address within the cool-off, over every username."""
    if not ip_address:
        return 0
    since = timezone.now() - settings.AXES_COOLOFF_TIME
    total = AccessAttempt.objects.filter(ip_address=ip_address, attempt_time__gt=since).aggregate(
        n=Sum("failures_since_start"))["n"]
    return total or 0


def ip_locked(request) -> bool:
    return ip_failures(get_client_ip_address(request)) >= settings.LOGIN_IP_FAILURE_LIMIT


class LoginThrottleHandler(AxesDatabaseHandler):
    def is_locked(self, request, credentials=None) -> bool:
        return super().is_locked(request, credentials) or ip_locked(request)

    def user_login_failed(self, sender, credentials: dict, request=None, **kwargs):
        super().user_login_failed(sender, credentials, request, **kwargs)
        if request is not None and not getattr(request, "axes_locked_out", False) and ip_locked(request):
            log.warning("login: locking out %s after %s failed logins across usernames",
                        get_client_ip_address(request), settings.LOGIN_IP_FAILURE_LIMIT)
            request.axes_locked_out = True
