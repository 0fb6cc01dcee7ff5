"""Dashboard pages for backtests: list and form, results, comparison. Data comes from the API."""
from __future__ import annotations

import json

from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import render

from tradepulse.core.permissions import visible_to

from .models import BacktestRun
from .selectors import COMPARE_METRICS


@login_required
def index(request):
    return render(request, "backtests/index.html")


@login_required
def detail(request, pk: int):
    run = visible_to(request.user, BacktestRun.objects.filter(pk=pk)).first()
    if run is None:
        raise Http404("No such backtest")
    return render(request, "backtests/detail.html", {"run": run})


@login_required
def compare(request):
    try:
        ids = sorted({int(x) for x in request.GET.get("ids", "").split(",") if x.strip()})
    except ValueError:
        ids = []
    return render(request, "backtests/compare.html", {"ids_json": json.dumps(ids), "metrics": COMPARE_METRICS})
