"""Dashboard pages for graduation: the pipeline board (a shell: cards, queue and decisions come
from the API and live events) and a config's lineage, from the candles it was measured on to its
trades."""
from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import render

from apps.strategies.models import Stage, StrategyConfig
from tradepulse.core.permissions import can, visible_to

from . import selectors
from .models import LADDER, LiveRequest, LiveRequestStatus


@login_required
def board(request):
    return render(request, "graduation/board.html", {
        "stages": [(s, Stage(s).label) for s in LADDER],
        "may_approve": request.user.has_perm("graduation.approve_live"),
        "may_edit_policies": request.user.has_perm("graduation.change_graduationpolicy"),
    })


@login_required
def config_lineage(request, pk: int):
    config = visible_to(request.user, StrategyConfig.objects.select_related("market__exchange", "owner")
                        .filter(pk=pk)).first()
    if config is None:
        raise Http404("No such strategy configuration")
    measures = selectors.config_measures(config)
    return render(request, "graduation/config.html", {
        "config": config, "lineage": selectors.lineage(config), "card": selectors.card(config, request.user),
        "measures": measures, "may_promote": can(request.user, "change", config),
        "may_demote": can(request.user, "operate", config),
        "may_approve": request.user.has_perm("graduation.approve_live"),
        "pending": LiveRequest.objects.filter(config=config, status=LiveRequestStatus.PENDING)
                                      .select_related("requested_by").first(),
    })
