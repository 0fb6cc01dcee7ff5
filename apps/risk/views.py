"""The dashboard's risk page. Data comes from /api/v1/risk/ (the same services); live updates
over /ws/events/."""
from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from .rules import LIMITS


@login_required
def page(request):
    return render(request, "risk/page.html", {"limits": [(k, label, unit) for k, (label, unit) in LIMITS.items()]})
