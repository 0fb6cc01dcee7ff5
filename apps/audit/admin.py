from django.contrib import admin
from django.contrib.admin.actions import delete_selected as django_delete_selected
from django.db import transaction
from django.utils.translation import gettext_lazy

from .models import AuditEvent
from .signals import BULK_DELETE_AUDITED, admin_deletion_event


@admin.action(permissions=["delete"], description=gettext_lazy("Delete selected %(verbose_name_plural)s"))
def delete_selected(modeladmin, request, queryset):
    """Django's "delete selected" for every model in the admin, audited: once the deletion is
    confirmed and allowed, each object gets an event with a snapshot of it, in the same
    transaction as the delete (Django logs bulk deletions without signals, unseen otherwise)."""
    if not request.POST.get("post"):
        return django_delete_selected(modeladmin, request, queryset)
    _, _, perms_needed, protected = modeladmin.get_deleted_objects(queryset, request)
    if perms_needed or protected:
        return django_delete_selected(modeladmin, request, queryset)  # Django refuses, as before
    with transaction.atomic():
        for obj in queryset:
            admin_deletion_event(obj, user=request.user)
        token = BULK_DELETE_AUDITED.set(True)
        try:
            return django_delete_selected(modeladmin, request, queryset)
        finally:
            BULK_DELETE_AUDITED.reset(token)


admin.site.add_action(delete_selected, "delete_selected")


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
