"""Admin for operators: exchanges (load markets), markets, download jobs (progress, cancel,
retry), quality issues, coverage (rebuild), retention policies (dry run, apply). Actions call
the services; job lists are narrowed by the same visibility rule as the API."""
from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.utils.html import format_html

from tradepulse.core.permissions import visible_to

from . import services
from .exchanges import MarketDataError
from .models import CandleCoverage, DataQualityIssue, DownloadJob, Exchange, Market, RetentionPolicy
from .timeframes import ms_to_iso


def _fail(modeladmin, request, exc) -> None:
    text = exc.message if isinstance(exc, MarketDataError) else "; ".join(getattr(exc, "messages", [str(exc)]))
    modeladmin.message_user(request, text, messages.ERROR)


@admin.register(Exchange)
class ExchangeAdmin(admin.ModelAdmin):
    list_display = ("name", "code", "is_file_source", "supports_sandbox", "active", "market_count", "markets_loaded_at")
    list_filter = ("is_file_source", "active")
    search_fields = ("code", "name")
    readonly_fields = ("markets_loaded_at", "timeframes")
    actions = ["load_markets"]

    def has_delete_permission(self, request, obj=None):
        return False  # its markets and candles hang off it; deactivate instead

    @admin.display(description="Markets")
    def market_count(self, obj):
        return obj.markets.count()

    @admin.action(description="Load markets from the exchange (ccxt)")
    def load_markets(self, request, queryset):
        for exchange in queryset:
            try:
                result = services.exchange_load_markets(exchange=exchange)
            except (MarketDataError, ValidationError) as exc:
                _fail(self, request, exc)
                continue
            self.message_user(request, f"{exchange.name}: {result['markets']} markets ({result['created']} new, "
                                       f"{result['updated']} updated, {result['deactivated']} deactivated).")


@admin.register(Market)
class MarketAdmin(admin.ModelAdmin):
    list_display = ("symbol", "exchange", "type", "base", "quote", "active", "price_step", "amount_step")
    list_filter = ("exchange", "type", "active", "quote")
    search_fields = ("symbol", "base", "quote", "exchange_symbol")
    list_select_related = ("exchange",)

    def has_delete_permission(self, request, obj=None):
        # The confirmation page would list every candle; markets an exchange drops become inactive.
        return False


@admin.register(DownloadJob)
class DownloadJobAdmin(admin.ModelAdmin):
    list_display = ("id", "market", "timeframe", "kind", "range", "owner", "state", "progress_bar", "rows_stored",
                    "rows_rejected", "candles_per_second", "eta", "created_at")
    list_filter = ("state", "kind", "timeframe", "market__exchange")
    search_fields = ("market__symbol", "owner__username", "message", "error")
    list_select_related = ("market__exchange", "owner")
    readonly_fields = [f.name for f in DownloadJob._meta.fields]
    actions = ["cancel", "retry"]

    def get_queryset(self, request):
        return visible_to(request.user, super().get_queryset(request))

    def has_add_permission(self, request):
        return False  # jobs are started from the dashboard, the API or download_candles

    @admin.display(description="Range")
    def range(self, obj):
        return f"{ms_to_iso(obj.start_ms)} → {ms_to_iso(obj.end_ms)}"

    @admin.display(description="Progress", ordering="progress")
    def progress_bar(self, obj):
        colour = {"failed": "#c62828", "cancelled": "#98a2b3", "succeeded": "#1a7f37"}.get(obj.state, "#1f6feb")
        return format_html(
            '<div style="width:120px;background:#eef2f6;border-radius:6px;overflow:hidden" title="{}">'
            '<div style="width:{}%;background:{};height:10px"></div></div><small>{} %</small>',
            obj.message or obj.error, f"{obj.progress:.1f}", colour, f"{obj.progress:.1f}")

    @admin.display(description="ETA")
    def eta(self, obj):
        return "—" if obj.eta_seconds is None or not obj.is_active else f"{obj.eta_seconds:.0f} s"

    @admin.action(description="Cancel selected downloads")
    def cancel(self, request, queryset):
        done = 0
        for job in queryset:
            try:
                services.download_cancel(job=job, reason=f"cancelled in admin by {request.user}")
                done += 1
            except ValidationError as exc:
                _fail(self, request, exc)
        if done:
            self.message_user(request, f"{done} download(s) cancelled or cancelling.")

    @admin.action(description="Retry selected downloads")
    def retry(self, request, queryset):
        done = 0
        for job in queryset:
            try:
                services.download_retry(job=job, reason=f"retried in admin by {request.user}")
                done += 1
            except ValidationError as exc:
                _fail(self, request, exc)
        if done:
            self.message_user(request, f"{done} download(s) queued again.")


@admin.register(DataQualityIssue)
class DataQualityIssueAdmin(admin.ModelAdmin):
    list_display = ("kind", "market", "timeframe", "start", "row_count", "detail", "rejected", "exchange_has_no_data",
                    "detected_at", "resolved_at")
    list_filter = ("kind", "timeframe", "exchange_has_no_data", "rejected", ("resolved_at", admin.EmptyFieldListFilter),
                   "market__exchange")
    search_fields = ("detail", "market__symbol")
    list_select_related = ("market__exchange",)
    readonly_fields = [f.name for f in DataQualityIssue._meta.fields if f.name != "resolved_at"]
    actions = ["resolve"]

    @admin.display(description="Start", ordering="start_ms")
    def start(self, obj):
        return ms_to_iso(obj.start_ms)

    @admin.action(description="Mark resolved (an exchange-has-no-data gap becomes fillable again)")
    def resolve(self, request, queryset):
        for issue in queryset.select_related("market"):
            services.issue_resolve(issue=issue, reason=f"resolved in admin by {request.user}")
        self.message_user(request, f"{queryset.count()} issue(s) resolved.")


@admin.register(CandleCoverage)
class CandleCoverageAdmin(admin.ModelAdmin):
    list_display = ("market", "timeframe", "start", "end", "candles")
    list_filter = ("timeframe", "market__exchange")
    search_fields = ("market__symbol",)
    list_select_related = ("market__exchange",)
    actions = ["rebuild"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False  # maintained by the store; "rebuild" recomputes it from the candles

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="From", ordering="start_ms")
    def start(self, obj):
        return ms_to_iso(obj.start_ms)

    @admin.display(description="To")
    def end(self, obj):
        return ms_to_iso(obj.end_ms)

    @admin.action(description="Rebuild coverage of the selected series from the candles")
    def rebuild(self, request, queryset):
        changed = []
        for market_id, timeframe in set(queryset.values_list("market_id", "timeframe")):
            changed += services.coverage_rebuild(market=Market.objects.get(pk=market_id), timeframe=timeframe)
        self.message_user(request, f"Coverage rebuilt; {len(changed)} series corrected.")


@admin.register(RetentionPolicy)
class RetentionPolicyAdmin(admin.ModelAdmin):
    list_display = ("timeframe", "keep_days", "active", "note", "updated_at")
    list_filter = ("active",)
    actions = ["dry_run", "apply_now"]

    @admin.action(description="Dry run: what would the selected policies delete?")
    def dry_run(self, request, queryset):
        try:
            report = services.retention_apply(dry_run=True, policies=queryset)
        except RuntimeError as exc:
            _fail(self, request, exc)
            return
        self.message_user(request, report.describe())

    @admin.action(description="Apply the selected policies now")
    def apply_now(self, request, queryset):
        try:
            report = services.retention_apply(dry_run=False, policies=queryset)
        except RuntimeError as exc:
            _fail(self, request, exc)
            return
        self.message_user(request, report.describe(), messages.WARNING if report.candles else messages.INFO)
