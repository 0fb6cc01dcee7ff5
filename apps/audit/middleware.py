"""Request context for every request: our request id, the caller's own id, the client's address.

Our request id is always minted here and returned as X-Request-ID. A caller's X-Request-ID is
kept apart as `client_request_id` (audit, logs), so a client can correlate without being able
to choose ids that are ours.
"""
from __future__ import annotations

from django.conf import settings

from tradepulse.core import context


def client_ip(request) -> str | None:
    """The client's address (tradepulse.core.context.client_address): behind TRADEPULSE_PROXY_HOPS
    trusted proxies (TRADEPULSE_BEHIND_PROXY), the right-most X-Forwarded-For entry they did not
    write; else the direct peer. Also django-axes' address (AXES_CLIENT_IP_CALLABLE)."""
    return context.client_address(request.META.get("REMOTE_ADDR"), request.META.get("HTTP_X_FORWARDED_FOR"),
                                  proxy_hops=settings.PROXY_HOPS if settings.TRUST_X_FORWARDED_FOR else None)


class RequestIdMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request_id = context.new_request_id()
        request.request_id = request_id
        token = context.set_context(
            context.ActorContext(
                request_id=request_id,
                client_request_id=context.clean_client_request_id(request.META.get("HTTP_X_REQUEST_ID")),
                actor_label="anonymous",
                ip=client_ip(request),
                user_agent=request.META.get("HTTP_USER_AGENT", "")[:300],
            )
        )
        try:
            response = self.get_response(request)
        finally:
            context.reset_context(token)
        response["X-Request-ID"] = request_id
        return response
