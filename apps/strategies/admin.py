from django.contrib import admin
from django.utils.html import format_html
from tradepulse.core.admin import OwnedAdmin

from .execution import EXECUTION_FIELDS
from .models import ConfigEvidence, StrategyConfig


class ConfigEvidenceInline(admin.TabularInline):
    """Evidence is measured, never typed in: shown read-only, with a link to the run."""

    model = ConfigEvidence
    extra = 0
    can_delete = False
    fields = ("source", "period_start", "period_end", "trades", "sharpe", "max_drawdown", "total_return",
              "oos_sharpe", "dsr", "pbo", "measured_by", "short_fingerprint", "short_code_version", "created_at")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description="Measured by")
    def measured_by(self, row):
        if row.run_type_id is None:
            return "—"
        label = f"{row.run_type.model} {row.run_id}" + (f", trial {row.trial}" if row.trial is not None else "")
        return format_html('<a href="{}">{}</a>', row.run_url, label) if row.run_url else label

    @admin.display(description="Candles")
    def short_fingerprint(self, row):
        return row.fingerprint[:12] or "—"

    @admin.display(description="Code")
    def short_code_version(self, row):
        return row.code_version[:12] or "—"


@admin.register(StrategyConfig)
class StrategyConfigAdmin(OwnedAdmin):
    list_display = ("name", "strategy_key", "market", "timeframe", "stage", "source", "owner", "created_at")
    list_filter = ("stage", "strategy_key", "timeframe", "source")
    search_fields = ("name", "strategy_key", "market__symbol", "owner__username", "notes")
    readonly_fields = ("stage", "source", "provenance", "metrics", "code_version", "created_at", "updated_at")
    list_select_related = ("market", "owner")
    inlines = [ConfigEvidenceInline]
    fieldsets = (
        (None, {"fields": ("name", "strategy_key", "market", "timeframe", "parameters", "notes")}),
        ("Execution settings (fixed once created: the evidence was measured with them)",
         {"fields": EXECUTION_FIELDS}),
        ("Provenance", {"fields": ("stage", "source", "provenance", "code_version", "metrics", "created_at",
                                   "updated_at")}),
    )

    def get_readonly_fields(self, request, obj=None):
        fixed = EXECUTION_FIELDS if obj is not None else ()
        return (*super().get_readonly_fields(request, obj), *fixed)

    def save_model(self, request, obj, form, change):
        """Edits go through the services, so they are validated and audited like every other door."""
        from . import services

        if change:
            changed = {f: form.cleaned_data[f] for f in form.changed_data if f in services.EDITABLE}
            if changed:
                services.config_update(config=obj, reason="edited in admin", **changed)
        else:
            saved = services.config_create(
                owner=request.user, strategy_key=obj.strategy_key, market=obj.market, timeframe=obj.timeframe,
                parameters=obj.parameters, name=obj.name, notes=obj.notes, reason="created in admin",
                execution=obj.execution_settings())
            obj.pk = saved.pk
