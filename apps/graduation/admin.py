"""Graduation in the admin: policies (changed with a reason, audited), decisions (read-only, with
their criteria), live requests (approve / reject by a second person) and configs in the pipeline
(promote, demote, retire, request live). Every action asks for a reason and calls the service."""
from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.forms import CharField, ModelForm, Textarea
from django.template.response import TemplateResponse
from django.utils.html import format_html, format_html_join

from tradepulse.core.admin import OwnedAdmin
from tradepulse.core.permissions import visible_to

from . import services
from .models import GraduationDecision, GraduationPolicy, LiveRequest, PipelineConfig


def _with_reason(modeladmin, request, queryset, *, title: str, action: str, apply, with_override=False):
    """Ask for a reason on an intermediate page, then apply `apply(obj, reason, override)` to each."""
    reason = request.POST.get("reason", "").strip()
    if request.POST.get("confirm") and reason:
        for obj in queryset:
            try:
                apply(obj, reason, bool(request.POST.get("override")))
                modeladmin.message_user(request, f"{obj}: done.", messages.SUCCESS)
            except (ValidationError, PermissionDenied) as exc:
                text = " ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
                modeladmin.message_user(request, f"{obj}: {text}", messages.WARNING)
        return None
    return TemplateResponse(request, "admin/graduation/reason.html", {
        **modeladmin.admin_site.each_context(request), "title": title, "objects": list(queryset), "action": action,
        "reason": reason, "with_override": with_override,
        "error": "Say why: the reason is required." if request.POST.get("confirm") else ""})


def _criteria_table(criteria: list[dict]):
    if not criteria:
        return "—"
    verdict = {True: "pass", False: "FAIL", None: "not measured"}
    return format_html("<table><tr><th>Policy</th><th>Criterion</th><th>Value</th><th>Threshold</th><th>Verdict</th>"
                       "<th>Source</th></tr>{}</table>", format_html_join(
                           "", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{} {}</td><td>{}</td><td>{}</td></tr>",
                           ((c.get("kind", ""), c["label"], "—" if c["value"] is None else c["value"], c["op"],
                             c["threshold"], verdict[c["passed"]], c.get("source") or c.get("note", ""))
                            for c in criteria)))


class PolicyForm(ModelForm):
    change_reason = CharField(widget=Textarea(attrs={"rows": 2}), help_text="Why: recorded in the audit trail.")

    class Meta:
        model = GraduationPolicy
        fields = list(GraduationPolicy.EDITABLE)


@admin.register(GraduationPolicy)
class GraduationPolicyAdmin(admin.ModelAdmin):
    form = PolicyForm
    list_display = ("__str__", "automatic", "min_trades", "min_oos_sharpe", "max_drawdown", "max_pbo", "min_dsr",
                    "min_days_in_stage", "min_trades_in_stage", "max_tracking_error", "max_live_drawdown",
                    "start_deployment", "updated_by", "updated_at")
    list_filter = ("kind", "automatic")
    readonly_fields = ("kind", "from_stage", "updated_by", "reason", "updated_at")

    def has_add_permission(self, request):
        return False  # one per transition, made by the data migration

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        changes = {f: form.cleaned_data[f] for f in form.changed_data if f in GraduationPolicy.EDITABLE}
        fresh = services.policy_update(policy=GraduationPolicy.objects.get(pk=obj.pk), actor=request.user,
                                       reason=form.cleaned_data["change_reason"], **changes)
        obj.__dict__.update(fresh.__dict__)


@admin.register(GraduationDecision)
class GraduationDecisionAdmin(admin.ModelAdmin):
    list_display = ("id", "config", "from_stage", "to_stage", "outcome", "decided_by", "actor", "overridden",
                    "created_at")
    list_filter = ("outcome", "decided_by", "from_stage", "to_stage")
    search_fields = ("config__name", "reason", "actor__username")
    list_select_related = ("config", "actor")
    fields = ("config", "from_stage", "to_stage", "outcome", "decided_by", "actor", "policy", "reason",
              "criteria_table", "evidence", "overridden", "deployment", "created_at")
    readonly_fields = fields

    def get_queryset(self, request):
        return visible_to(request.user, super().get_queryset(request))

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="Criteria")
    def criteria_table(self, obj):
        return _criteria_table(obj.criteria)


@admin.register(LiveRequest)
class LiveRequestAdmin(admin.ModelAdmin):
    list_display = ("id", "config", "requested_by", "status", "decided_by", "created_at")
    list_filter = ("status",)
    list_select_related = ("config", "requested_by", "decided_by")
    fields = ("config", "requested_by", "reason", "criteria_table", "status", "decided_by", "decision_reason",
              "decided_at", "decision", "created_at")
    readonly_fields = fields
    actions = ["approve", "reject"]

    def get_queryset(self, request):
        return visible_to(request.user, super().get_queryset(request))

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="Criteria when requested")
    def criteria_table(self, obj):
        return _criteria_table(obj.criteria)

    @admin.action(description="Approve going live (you must not be the requester)")
    def approve(self, request, queryset):
        return _with_reason(self, request, queryset, title="Approve going live", action="approve",
                            apply=lambda r, reason, _o: services.live_request_approve(request=r, actor=request.user,
                                                                                       reason=reason))

    @admin.action(description="Reject")
    def reject(self, request, queryset):
        return _with_reason(self, request, queryset, title="Reject the live request", action="reject",
                            apply=lambda r, reason, _o: services.live_request_reject(request=r, actor=request.user,
                                                                                      reason=reason))


@admin.register(PipelineConfig)
class PipelineConfigAdmin(OwnedAdmin):
    list_display = ("name", "strategy_key", "market", "timeframe", "stage", "owner", "created_at")
    list_filter = ("stage", "strategy_key", "timeframe")
    search_fields = ("name", "strategy_key", "market__symbol", "owner__username")
    list_select_related = ("market", "owner")
    fields = ("name", "strategy_key", "market", "timeframe", "stage", "owner", "decision_list")
    readonly_fields = fields
    actions = ["promote", "demote", "retire", "request_live"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="Decisions")
    def decision_list(self, obj):
        rows = GraduationDecision.objects.filter(config=obj).select_related("actor")[:20]
        return format_html_join(format_html("<br>"), "{}: {} {} → {} ({}) {}",
                                ((d.created_at.strftime("%Y-%m-%d %H:%M"), d.outcome, d.from_stage, d.to_stage,
                                  d.actor.username if d.actor else "policy", d.reason) for d in rows)) or "—"

    @admin.action(description="Promote one stage (asks for a reason)")
    def promote(self, request, queryset):
        return _with_reason(self, request, queryset, title="Promote", action="promote", with_override=True,
                            apply=lambda c, reason, override: services.config_promote(
                                config=c, actor=request.user, reason=reason, override=override))

    @admin.action(description="Demote (asks for a reason)")
    def demote(self, request, queryset):
        return _with_reason(self, request, queryset, title="Demote", action="demote",
                            apply=lambda c, reason, _o: services.config_demote(config=c, actor=request.user,
                                                                                reason=reason))

    @admin.action(description="Retire (asks for a reason)")
    def retire(self, request, queryset):
        return _with_reason(self, request, queryset, title="Retire", action="retire",
                            apply=lambda c, reason, _o: services.config_retire(config=c, actor=request.user,
                                                                                reason=reason))

    @admin.action(description="Request going live (a second person approves)")
    def request_live(self, request, queryset):
        return _with_reason(self, request, queryset, title="Request going live", action="request_live",
                            apply=lambda c, reason, _o: services.live_request_create(config=c, actor=request.user,
                                                                                      reason=reason))
