from django.contrib import admin
from tradepulse.core.admin import OwnedAdmin

from .execution import EXECUTION_FIELDS
from .models import StrategyConfig


@admin.register(StrategyConfig)
class StrategyConfigAdmin(OwnedAdmin):
    list_display = ("name", "strategy_key", "market", "timeframe", "stage", "source", "owner", "created_at")
    list_filter = ("stage", "strategy_key", "timeframe", "source")
    search_fields = ("name", "strategy_key", "market__symbol", "owner__username", "notes")
    readonly_fields = ("stage", "source", "provenance", "metrics", "code_version", "created_at", "updated_at")
    list_select_related = ("market", "owner")
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
