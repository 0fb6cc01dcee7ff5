from django.contrib import admin
from tradepulse.core.admin import OwnedAdmin

from .models import StrategyConfig


@admin.register(StrategyConfig)
class StrategyConfigAdmin(OwnedAdmin):
    list_display = ("name", "strategy_key", "market", "timeframe", "stage", "source", "owner", "created_at")
    list_filter = ("stage", "strategy_key", "timeframe", "source")
    search_fields = ("name", "strategy_key", "market__symbol", "owner__username", "notes")
    readonly_fields = ("stage", "source", "provenance", "metrics", "created_at", "updated_at")
    list_select_related = ("market", "owner")

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
                parameters=obj.parameters, name=obj.name, notes=obj.notes, reason="created in admin")
            obj.pk = saved.pk
