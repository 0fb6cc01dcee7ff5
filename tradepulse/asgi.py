"""ASGI entry point: HTTP through Django, WebSockets at /ws/events/ with session auth."""
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tradepulse.settings")
django_asgi_app = get_asgi_application()  # populate the app registry before importing consumers

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from tradepulse.core.logging import AccessLogMiddleware  # noqa: E402
from tradepulse.routing import websocket_urlpatterns  # noqa: E402

# The access log wraps everything: a line per request with our request id, JSON in production.
application = AccessLogMiddleware(ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
))
