"""Dashboard pages for training: list and form, run detail. Data comes from the API."""
from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import render

from tradepulse.core.permissions import visible_to

from .models import TrainingRun


@login_required
def index(request):
    return render(request, "training/index.html")


@login_required
def detail(request, pk: int):
    run = visible_to(request.user, TrainingRun.objects.filter(pk=pk)).first()
    if run is None:
        raise Http404("No such training run")
    return render(request, "training/detail.html", {"run": run})
