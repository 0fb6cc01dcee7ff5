"""Admin bases: owned objects narrowed by the one visibility rule; jobs shown read-only."""
from __future__ import annotations

from django.contrib import admin
from django.utils.html import format_html
from guardian.admin import GuardedModelAdmin

from tradepulse.core.permissions import can, visible_to


class OwnedAdmin(GuardedModelAdmin):
    """Lists only what the signed-in operator or user may see; object permissions editable."""

    def get_queryset(self, request):
        return visible_to(request.user, super().get_queryset(request))

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) and (obj is None or can(request.user, "change", obj))

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and (obj is None or can(request.user, "delete", obj))


class JobAdmin(OwnedAdmin):
    """Jobs are started from the dashboard, the API or a command; here they are inspected."""

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request):
        return False

    @admin.display(description="Progress", ordering="progress")
    def progress_bar(self, obj):
        return format_html('<progress value="{}" max="100"></progress> {}%', obj.progress, round(obj.progress))
