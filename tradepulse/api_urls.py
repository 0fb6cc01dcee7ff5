"""/api/v1/: every app contributes its viewsets through `register(router)` in its api module."""
from importlib import import_module

from django.urls import include, path
from rest_framework.routers import DefaultRouter

API_MODULES = [
    "apps.accounts.api",
    "apps.audit.api",
    "apps.marketdata.api",
    "apps.strategies.api",
    "apps.backtests.api",
    "apps.training.api",
    "apps.graduation.api",
    "apps.risk.api",
    "apps.trading.api",
    "apps.alerts.api",
    "apps.ops.api",
    "apps.dashboard.api",
]

router = DefaultRouter()
extra = []
for dotted in API_MODULES:
    try:
        module = import_module(dotted)
    except ModuleNotFoundError as exc:
        if exc.name != dotted:  # a real import error inside the module must surface
            raise
        continue
    if hasattr(module, "register"):
        module.register(router)
    extra += getattr(module, "urlpatterns", [])

urlpatterns = [*extra, path("", include(router.urls))]
