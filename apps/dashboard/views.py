"""Dashboard pages. Pages render a shell; data comes from the API and live events."""
from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import JsonResponse
from django.shortcuts import render

from tradepulse.core import context
from tradepulse.core.permissions import sees_everything


@login_required
def home(request):
    return render(request, "dashboard/home.html")


@login_required
def audit(request):
    return render(request, "dashboard/audit.html")


@login_required
def health_page(request):
    return render(request, "dashboard/health.html", {"operator": sees_everything(request.user)})


def _wants_json(request) -> bool:
    return request.path.startswith("/api/") or "application/json" in request.headers.get("Accept", "")


def not_found(request, exception=None):
    if _wants_json(request):
        return JsonResponse({"error": {"code": "not_found", "message": "Not found.",
                                       "request_id": context.current().request_id}}, status=404)
    return render(request, "404.html", status=404)


def server_error(request):
    request_id = getattr(request, "request_id", "") or context.current().request_id
    if _wants_json(request):
        return JsonResponse({"error": {"code": "server_error", "message": "Internal error; quote the request id.",
                                       "request_id": request_id}}, status=500)
    return render(request, "500.html", {"request_id": request_id}, status=500)
