from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from apps.dashboard import health, metrics

admin.site.site_header = "TradePulse operations"
admin.site.site_title = "TradePulse admin"
admin.site.index_title = "Operations"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include("tradepulse.api_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="api-docs"),
    path("health/live", health.live, name="health-live"),
    path("health/ready", health.ready, name="health-ready"),
    path("metrics", metrics.metrics_view, name="metrics"),
    path("account/", include("apps.accounts.urls")),
    path("", include("apps.dashboard.urls")),
]

handler404 = "apps.dashboard.views.not_found"
handler500 = "apps.dashboard.views.server_error"
