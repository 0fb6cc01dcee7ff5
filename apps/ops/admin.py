"""Backups in the admin: listed for operators (read-only); taken from the dashboard, the API or
`manage.py backup`, restored with `manage.py restore`."""
from __future__ import annotations

from django.contrib import admin

from tradepulse.core.permissions import sees_everything

from .models import Backup


@admin.register(Backup)
class BackupAdmin(admin.ModelAdmin):
    list_display = ("name", "kind", "state", "engine", "size_bytes", "created_at", "finished_at", "requested_by",
                    "restored_at")
    list_filter = ("state", "kind", "engine")

    def has_module_permission(self, request):
        return sees_everything(request.user)

    def has_view_permission(self, request, obj=None):
        return sees_everything(request.user)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
