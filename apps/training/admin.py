from django.contrib import admin, messages
from django.core.exceptions import ValidationError

from tradepulse.core.admin import JobAdmin

from . import services
from .models import TrainingRun, TrainingTrial


class TrainingTrialInline(admin.TabularInline):
    model = TrainingTrial
    extra = 0
    can_delete = False
    max_num = 0
    fields = ("study", "number", "state", "params", "value", "penalty", "pruned_reason", "worker_id", "duration_s")
    readonly_fields = fields
    show_change_link = False


@admin.register(TrainingRun)
class TrainingRunAdmin(JobAdmin):
    """Training runs are created from the dashboard, the API or the `train` command; here they are inspected."""

    list_display = ("id", "name", "owner", "state", "progress_bar", "strategy_key", "market", "timeframe",
                    "trials_progress", "best_value", "verdict_text", "created_at")
    list_filter = ("state", "strategy_key", "timeframe", "objective", "sampler")
    search_fields = ("name", "strategy_key", "market__symbol", "owner__username", "study_name")
    list_select_related = ("market", "owner")
    inlines = [TrainingTrialInline]
    actions = ["cancel_runs", "retry_runs"]

    @admin.display(description="Trials")
    def trials_progress(self, obj):
        return f"{obj.trials_done} / {obj.trials_budget}"

    @admin.display(description="Verdict")
    def verdict_text(self, obj):
        return (obj.verdict or {}).get("text", "—")

    @admin.action(description="Cancel selected training runs")
    def cancel_runs(self, request, queryset):
        for run in queryset:
            try:
                services.training_cancel(run=run, reason="cancelled in admin")
            except ValidationError as exc:
                self.message_user(request, f"{run}: {' '.join(exc.messages)}", messages.WARNING)

    @admin.action(description="Retry selected training runs (failed, interrupted or cancelled: they resume)")
    def retry_runs(self, request, queryset):
        for run in queryset:
            try:
                services.training_retry(run=run, reason="retried in admin")
            except ValidationError as exc:
                self.message_user(request, f"{run}: {' '.join(exc.messages)}", messages.WARNING)
