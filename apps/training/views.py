"""Dashboard pages for training: list and form, run detail. Data comes from the API."""
from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import render

from tradepulse.core.permissions import visible_to

from .models import Objective, SamplerChoice, Scheme, TrainingRun
from .options import DEFAULTS


@login_required
def index(request):
    """The form starts from the one set of training defaults (apps/training/options.py)."""
    return render(request, "training/index.html", {
        "defaults": DEFAULTS, "objectives": Objective.choices, "samplers": SamplerChoice.choices,
        "schemes": Scheme.choices})


@login_required
def detail(request, pk: int):
    run = visible_to(request.user, TrainingRun.objects.filter(pk=pk)).first()
    if run is None:
        raise Http404("No such training run")
    return render(request, "training/detail.html", {"run": run})
