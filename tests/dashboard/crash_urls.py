"""The project's URLs plus one view that fails, for the request-error tests."""
from django.urls import path

from tradepulse.urls import urlpatterns as project_urls


def boom(request):
    raise RuntimeError("simulated failure token=abcdef123456")


urlpatterns = [path("boom/", boom), *project_urls]
handler500 = "apps.dashboard.views.server_error"
