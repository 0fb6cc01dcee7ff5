"""Dashboard pages: backups (operators), and exports with the tax report (everyone, their own)."""
from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import render
from django.utils import timezone

from tradepulse.core.permissions import sees_everything


@login_required
def backups(request):
    if not sees_everything(request.user):
        raise PermissionDenied("Backups are for operators.")
    return render(request, "ops/backups.html", {"keep_days": settings.TRADEPULSE_BACKUP_KEEP_DAYS,
                                                "keep_min": settings.TRADEPULSE_BACKUP_KEEP_MIN})


@login_required
def exports(request):
    return render(request, "ops/exports.html", {"this_year": timezone.now().year,
                                                "months": [(i, m) for i, m in enumerate(
                                                    ["January", "February", "March", "April", "May", "June", "July",
                                                     "August", "September", "October", "November", "December"], 1)]})
