"""Dashboard page: backups (operators)."""
from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import render

from tradepulse.core.permissions import sees_everything


@login_required
def backups(request):
    if not sees_everything(request.user):
        raise PermissionDenied("Backups are for operators.")
    return render(request, "ops/backups.html", {"keep_days": settings.TRADEPULSE_BACKUP_KEEP_DAYS,
                                                "keep_min": settings.TRADEPULSE_BACKUP_KEEP_MIN})
