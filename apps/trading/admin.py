"""Trading in the admin: accounts (secrets write-only), deployments with state actions that
call the same services as the API, and read-only orders, fills, positions and snapshots."""
from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError

from tradepulse.core.admin import OwnedAdmin
from tradepulse.core.crypto import mask
from tradepulse.core.permissions import visible_to

from . import services
from .models import Deployment, ExchangeAccount, Fill, Order, PortfolioSnapshot, Position


class ExchangeAccountForm(forms.ModelForm):
    """Secrets are write-only: the form never shows them; blank keeps the stored value."""

    api_key = forms.CharField(required=False, widget=forms.PasswordInput(render_value=False),
                              help_text="Leave blank to keep the stored key.")
    api_secret = forms.CharField(required=False, widget=forms.PasswordInput(render_value=False),
                                 help_text="Leave blank to keep the stored secret.")
    api_password = forms.CharField(required=False, widget=forms.PasswordInput(render_value=False),
                                   help_text="Passphrase, for exchanges that need one. Blank keeps it.")

    class Meta:
        model = ExchangeAccount
        fields = ["name", "exchange", "mode", "api_key", "api_secret", "api_password", "paper_balance",
                  "paper_currency"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in ExchangeAccount.SECRET_FIELDS:
            self.initial[name] = ""

    def clean(self):
        data = super().clean()
        if self.instance.pk:  # blank = keep: validate the account with its stored secrets
            stored = ExchangeAccount.objects.get(pk=self.instance.pk)
            for name in ExchangeAccount.SECRET_FIELDS:
                if not data.get(name):
                    data[name] = getattr(stored, name)
        return data


@admin.register(ExchangeAccount)
class ExchangeAccountAdmin(OwnedAdmin):
    form = ExchangeAccountForm
    list_display = ("name", "owner", "exchange", "mode", "health", "key_hint", "last_checked_at")
    list_filter = ("mode", "health", "exchange")
    search_fields = ("name", "owner__username")
    readonly_fields = ("health", "last_error", "last_checked_at", "permissions", "balances", "balance_baseline",
                       "baseline_at")
    actions = ["test_connection"]

    @admin.display(description="API key")
    def key_hint(self, obj):
        return mask(obj.api_key) or "—"

    def get_readonly_fields(self, request, obj=None):
        fixed = ("exchange", "mode") if obj is not None else ()
        return (*fixed, *self.readonly_fields)

    def save_model(self, request, obj, form, change):
        data = {k: v for k, v in form.cleaned_data.items() if k in form.changed_data or k in obj.SECRET_FIELDS}
        try:
            if change:
                allowed = services.accounts.EDITABLE
                services.account_update(account=obj, reason="changed in admin",
                                        **{k: v for k, v in data.items() if k in allowed})
            else:
                created = services.account_create(owner=request.user, reason="created in admin",
                                                  **{k: v for k, v in form.cleaned_data.items()})
                obj.pk = created.pk
        except ValidationError as exc:
            self.message_user(request, " ".join(exc.messages), messages.ERROR)

    def delete_model(self, request, obj):
        services.account_delete(account=obj, reason="deleted in admin")

    @admin.action(description="Test connection (permissions and balances)")
    def test_connection(self, request, queryset):
        for account in visible_to(request.user, queryset, "change"):
            result = services.account_test_connection(account=account, reason="connection test in admin")
            level = messages.SUCCESS if result["health"] == "ok" else messages.WARNING
            detail = result["error"] or "; ".join(result["warnings"]) or "key works"
            self.message_user(request, f"{account.name}: {result['health']} — {detail}", level)


class PositionInline(admin.TabularInline):
    model = Position
    extra = 0
    can_delete = False
    max_num = 0
    fields = ("symbol", "side", "amount", "entry_price", "mark_price", "realised_pnl", "unrealised_pnl", "fees")
    readonly_fields = fields


@admin.register(Deployment)
class DeploymentAdmin(OwnedAdmin):
    list_display = ("id", "name", "owner", "account", "capital", "state", "state_reason", "last_tick_at")
    list_filter = ("state", "account__mode")
    search_fields = ("name", "owner__username")
    list_select_related = ("owner", "account")
    inlines = [PositionInline]
    actions = ["activate", "pause", "stop", "reconcile"]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request):
        return False  # created through the API, the dashboard or `deploy`, where the checks run

    def _each(self, request, queryset, fn, verb):
        for deployment in visible_to(request.user, queryset, "change"):
            try:
                fn(deployment)
                self.message_user(request, f"{deployment}: {verb}.")
            except ValidationError as exc:
                self.message_user(request, f"{deployment}: {' '.join(exc.messages)}", messages.WARNING)

    @admin.action(description="Activate (trade from the next closed bar)")
    def activate(self, request, queryset):
        self._each(request, queryset, lambda d: services.deployment_activate(deployment=d, reason="activated in admin"),
                   "activated")

    @admin.action(description="Pause (no new entries)")
    def pause(self, request, queryset):
        self._each(request, queryset, lambda d: services.deployment_pause(deployment=d, reason="paused in admin"),
                   "paused")

    @admin.action(description="Stop (apply the exit policy)")
    def stop(self, request, queryset):
        self._each(request, queryset, lambda d: services.deployment_stop(deployment=d, reason="stopped in admin"),
                   "stopped")

    @admin.action(description="Reconcile with the exchange")
    def reconcile(self, request, queryset):
        for deployment in visible_to(request.user, queryset, "change"):
            result = services.deployment_reconcile(deployment=deployment)
            text = "; ".join(result["flagged"] + result["repaired"]) or "books match the exchange"
            self.message_user(request, f"{deployment}: {text}",
                              messages.WARNING if result["flagged"] else messages.SUCCESS)


class _DeploymentChildAdmin(admin.ModelAdmin):
    """Read-only rows of a deployment, visible when the deployment is."""

    deployment_path = "deployment"

    def get_queryset(self, request):
        deployments = visible_to(request.user, Deployment.objects.all())
        return super().get_queryset(request).filter(**{f"{self.deployment_path}__in": deployments})

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class FillInline(admin.TabularInline):
    model = Fill
    extra = 0
    can_delete = False
    max_num = 0
    fields = ("exchange_trade_id", "amount", "price", "fee", "fee_currency", "time", "source")
    readonly_fields = fields


@admin.register(Order)
class OrderAdmin(_DeploymentChildAdmin):
    list_display = ("client_order_id", "deployment", "side", "type", "amount", "status", "filled", "average",
                    "reason_code", "created_at")
    list_filter = ("status", "side", "type", "reason_code")
    search_fields = ("client_order_id", "exchange_order_id")
    inlines = [FillInline]
    actions = ["refresh"]

    @admin.action(description="Refresh from the exchange")
    def refresh(self, request, queryset):
        for order in queryset:
            services.order_refresh(order=order)


@admin.register(Fill)
class FillAdmin(_DeploymentChildAdmin):
    deployment_path = "order__deployment"
    list_display = ("exchange_trade_id", "order", "amount", "price", "fee", "fee_currency", "time", "source")


@admin.register(Position)
class PositionAdmin(_DeploymentChildAdmin):
    list_display = ("deployment", "symbol", "side", "amount", "entry_price", "realised_pnl", "unrealised_pnl")


@admin.register(PortfolioSnapshot)
class PortfolioSnapshotAdmin(_DeploymentChildAdmin):
    list_display = ("time", "deployment", "account", "equity", "cash", "positions_value")
