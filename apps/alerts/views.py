"""Dashboard pages: the alert centre and your alert channels. Pages render a shell; data comes
from the API (/api/v1/alerts/, /api/v1/alert-channels/, /api/v1/alert-deliveries/) and live events."""
from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from .models import ChannelKind, Severity


@login_required
def centre(request):
    return render(request, "alerts/centre.html", {"severities": Severity.choices})


@login_required
def channels(request):
    return render(request, "alerts/channels.html", {"kinds": ChannelKind.choices, "severities": Severity.choices})
