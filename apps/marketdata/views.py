"""Dashboard page: /market-data/ (a shell; data comes from the API and live events)."""
from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from .api import MAX_CANDLES_PER_REQUEST


@login_required
def page(request):
    return render(request, "marketdata/page.html", {
        "can_download": request.user.has_perm("marketdata.add_downloadjob"),
        "max_candles": MAX_CANDLES_PER_REQUEST,
    })
