from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.core.exceptions import ValidationError

from . import services
from .models import ApiToken, Quota, User


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


class QuotaForm(forms.ModelForm):
    """A limit for one role or one user; every change asks for its reason afresh."""

    class Meta:
        model = Quota
        fields = ["key", "role", "user", "value", "reason"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["reason"].help_text = "Why the limit is this value: kept on the row and in the audit log."
        if self.instance.pk:
            self.initial["reason"] = ""  # a change needs its own reason, not the last one


@admin.register(Quota)
class QuotaAdmin(admin.ModelAdmin):
    """Limits on expensive work (apps/accounts/quotas.py). Saved through `services.quota_set`,
    so each change is validated and audited with its reason."""

    form = QuotaForm
    list_display = ("key", "holder", "value", "reason", "updated_at")
    list_filter = ("key", "role")
    search_fields = ("user__username", "role__name", "reason")
    list_select_related = ("role", "user")
    autocomplete_fields = ("user",)

    def get_readonly_fields(self, request, obj=None):
        return ("key", "role", "user") if obj is not None else ()

    def save_model(self, request, obj, form, change):
        try:
            saved = services.quota_set(key=obj.key, value=obj.value, reason=form.cleaned_data["reason"],
                                       role=obj.role, user=obj.user)
        except ValidationError as exc:
            self.message_user(request, " ".join(exc.messages), messages.ERROR)
            return
        obj.pk = saved.pk

    def delete_model(self, request, obj):
        services.quota_delete(quota=obj, reason=f"removed in the admin by {request.user.get_username()}")

    def delete_queryset(self, request, queryset):
        for quota in queryset:
            self.delete_model(request, quota)
