from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin

from .models import ApiToken, User


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    fieldsets = DjangoUserAdmin.fieldsets + (("Preferences", {"fields": ("timezone", "language")}),)
    list_display = ("username", "email", "roles", "is_staff", "is_active", "last_login")
    list_filter = ("groups", "is_staff", "is_active")

    @admin.display(description="Roles")
    def roles(self, obj):
        return ", ".join(obj.role_names)

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("groups")


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Tokens can be seen and revoked here; they are created by their owner (shown once)."""

    list_display = ("name", "user", "token_key", "created", "expiry", "last_used_at")
    list_filter = ("user",)
    search_fields = ("name", "user__username", "token_key")
    readonly_fields = ("digest", "token_key", "user", "created", "expiry", "last_used_at", "name")
    exclude = ("digest",)

    def has_add_permission(self, request):
        return False
