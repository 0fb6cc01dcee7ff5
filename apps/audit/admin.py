from django.contrib import admin

from .models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """Read-only: audit events are append-only everywhere."""

    list_display = ("created_at", "actor_label", "via", "action", "target_repr", "reason", "request_id")
    list_filter = ("action", "actor_label", "target_type")
    search_fields = ("action", "actor_label", "target_repr", "reason", "request_id", "client_request_id", "target_id")
    date_hierarchy = "created_at"
    list_select_related = ("target_type",)

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
