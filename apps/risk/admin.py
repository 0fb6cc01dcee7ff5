"""Risk in the admin: every save goes through the risk services with the reason typed in the form
(profile edits, overrides, kill-switch trips and releases), so the admin changes nothing the API,
the page or the command could not, and everything is audited the same way."""
from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError

from . import services
from .models import KillSwitch, RiskOverride, RiskProfile, Scope, SizingAdjustment
from .rules import LIMITS
from .selectors import PARAMS


def _target(obj_or_data) -> object:
    get = obj_or_data.get if isinstance(obj_or_data, dict) else lambda k: getattr(obj_or_data, k, None)
    return {Scope.USER: get("user"), Scope.ACCOUNT: get("account"), Scope.DEPLOYMENT: get("deployment")}.get(
        get("scope"))


class ReasonForm(forms.ModelForm):
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), help_text="Why: recorded in the audit trail.")


class RiskProfileForm(ReasonForm):
    class Meta:
        model = RiskProfile
        fields = ["scope", "user", "account", "deployment", *LIMITS, *PARAMS, "notes"]


class ServiceAdmin(admin.ModelAdmin):
    def _run(self, request, call):
        try:
            return call()
        except (ValidationError, PermissionDenied) as exc:
            text = " ".join(getattr(exc, "messages", None) or [str(exc)])
            self.message_user(request, text, messages.ERROR)
            return None


@admin.register(RiskProfile)
class RiskProfileAdmin(ServiceAdmin):
    form = RiskProfileForm
    list_display = ("scope_label", "risk_per_trade_pct", "position_notional_max", "total_exposure_pct",
                    "daily_loss_pct", "drawdown_pct", "updated_at")
    list_filter = ("scope",)

    def get_readonly_fields(self, request, obj=None):
        return ("scope", "user", "account", "deployment") if obj else ()

    def save_model(self, request, obj, form, change):
        fields = [f for f in (*LIMITS, *PARAMS, "notes") if f in form.changed_data or not change]
        changes = {f: form.cleaned_data.get(f) for f in fields}
        scope = obj.scope if change else form.cleaned_data["scope"]
        target = _target(obj if change else form.cleaned_data)
        saved = self._run(request, lambda: services.profile_update(scope=scope, target=target, changes=changes,
                                                                   reason=form.cleaned_data["reason"],
                                                                   actor=request.user))
        if saved:
            obj.pk = saved.pk

    def has_delete_permission(self, request, obj=None):
        return False  # clear the fields instead: removal of a limit is an audited change too


class OverrideForm(ReasonForm):
    reason = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}),
                             help_text="Why (new override) — recorded in the audit trail.")
    revoke_reason = forms.CharField(required=False, help_text="To end an active override now, say why.")
    expires_at = forms.DateTimeField(required=False, help_text="Empty: the profile's default lifetime (24 h).")

    class Meta:
        model = RiskOverride
        fields = ["scope", "user", "account", "deployment", "limit", "value", "expires_at"]
        widgets = {"limit": forms.Select(choices=[(k, v[0]) for k, v in LIMITS.items()])}


@admin.register(RiskOverride)
class RiskOverrideAdmin(ServiceAdmin):
    form = OverrideForm
    list_display = ("scope_label", "limit", "value", "expires_at", "revoked_at", "created_by")
    list_filter = ("scope", "limit")

    def get_readonly_fields(self, request, obj=None):
        return ("scope", "user", "account", "deployment", "limit", "value", "expires_at", "created_by",
                "revoked_at", "revoked_by") if obj else ()

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        if change:
            if data.get("revoke_reason"):
                self._run(request, lambda: services.override_revoke(override=obj, reason=data["revoke_reason"],
                                                                    actor=request.user))
            return
        saved = self._run(request, lambda: services.override_create(
            scope=data["scope"], target=_target(data), limit=data["limit"], value=data["value"],
            reason=data.get("reason", ""), expires_at=data.get("expires_at"), actor=request.user))
        if saved:
            obj.pk = saved.pk

    def has_delete_permission(self, request, obj=None):
        return False


class KillSwitchForm(ReasonForm):
    reason = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}),
                             help_text="Why trip it — recorded in the audit trail.")
    release_reason = forms.CharField(required=False, help_text="To release an active switch, say why.")

    class Meta:
        model = KillSwitch
        fields = ["scope", "user", "account", "deployment", "flatten"]


@admin.register(KillSwitch)
class KillSwitchAdmin(ServiceAdmin):
    form = KillSwitchForm
    list_display = ("scope_label", "active", "automatic", "flatten", "created_at", "released_at")
    list_filter = ("scope", "automatic", ("released_at", admin.EmptyFieldListFilter))

    @admin.display(boolean=True)
    def active(self, obj):
        return obj.active

    def get_readonly_fields(self, request, obj=None):
        return ("scope", "user", "account", "deployment", "flatten", "automatic", "trigger", "outcome",
                "tripped_by", "released_at", "released_by") if obj else ()

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        if change:
            if data.get("release_reason"):
                self._run(request, lambda: services.killswitch_release(switch=obj, reason=data["release_reason"],
                                                                       actor=request.user))
            return
        saved = self._run(request, lambda: services.killswitch_trip(
            scope=data["scope"], target=_target(data), reason=data.get("reason", ""), flatten=data.get("flatten"),
            actor=request.user))
        if saved:
            obj.pk = saved.pk

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(SizingAdjustment)
class SizingAdjustmentAdmin(admin.ModelAdmin):
    list_display = ("deployment", "time", "method", "risk_before_pct", "risk_after_pct", "reason")
    list_filter = ("method",)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
