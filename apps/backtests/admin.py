from django.contrib import admin, messages
from django.core.exceptions import ValidationError

from tradepulse.core.admin import JobAdmin

from . import services
from .models import BacktestRun, BacktestTrade


class TradeInline(admin.TabularInline):
    model = BacktestTrade
    extra = 0
    can_delete = False
    max_num = 0
    fields = ("number", "side", "entry_time", "exit_time", "entry_price", "exit_price", "size", "fees", "pnl",
              "return_pct", "exit_reason")
    readonly_fields = fields
    show_change_link = False


@admin.register(BacktestRun)
class BacktestRunAdmin(JobAdmin):
    """Runs are created from the dashboard, the API or the `backtest` command; here they are inspected."""

    list_display = ("id", "name", "owner", "state", "progress_bar", "strategy_key", "market", "timeframe",
                    "final_equity", "created_at")
    list_filter = ("state", "strategy_key", "timeframe")
    search_fields = ("name", "strategy_key", "market__symbol", "owner__username")
    list_select_related = ("market", "owner")
    inlines = [TradeInline]
    actions = ["cancel_runs"]

    @admin.action(description="Cancel selected backtests")
    def cancel_runs(self, request, queryset):
        for run in queryset:
            try:
                services.backtest_cancel(run=run, reason="cancelled in admin")
            except ValidationError as exc:
                self.message_user(request, f"{run}: {' '.join(exc.messages)}", messages.WARNING)
