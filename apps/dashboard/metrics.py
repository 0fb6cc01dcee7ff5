"""Request latency and errors, and the Prometheus endpoint /metrics.

`RequestMetricsMiddleware` times every HTTP request (static files and probes excepted):
- into a Prometheus histogram of this process (for /metrics: rate() and histogram_quantile()
  across processes are Prometheus' job);
- into per-minute totals in the shared cache (Redis in production), so the health page sees
  the latency and error rate of every web process. Totals are summed in memory and added to the
  cache at most every FLUSH_EVERY_S, so a request costs no round trip;
- a response of 500 or more is stored as a RequestError with its request id.

/metrics answers operators (signed in, or by API token) and a scraper presenting
`Authorization: Bearer <TRADEPULSE_METRICS_TOKEN>`; everyone else gets 401/403. The platform's
own figures (downloads, backtests, trials, orders, rejections, alerts, deliveries, queues) are
read from the database at scrape time by `PlatformCollector`, so every process reports the same.
"""
from __future__ import annotations

import hmac
import logging
import sys
import threading
import time
from datetime import UTC, datetime

from django.conf import settings
from django.core.cache import cache
from django.core.signals import got_request_exception
from django.http import HttpResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from rest_framework import exceptions

from tradepulse.core.auth import ContextTokenAuthentication
from tradepulse.core.logging import redact
from tradepulse.core.permissions import sees_everything

from . import health
from .models import RequestError

log = logging.getLogger(__name__)

REGISTRY = CollectorRegistry(auto_describe=True)
BUCKETS_S = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
REQUEST_SECONDS = Histogram("tradepulse_http_request_duration_seconds", "HTTP request duration (this process).",
                            ["method", "status"], buckets=BUCKETS_S, registry=REGISTRY)
SKIP_PREFIXES = ("/static/", "/health/", "/metrics", "/favicon.ico")
FLUSH_EVERY_S = 5.0
MINUTE_TTL_S = 2 * 3600
# Latency buckets kept per minute in the cache (ms upper bounds; the last is "slower").
LATENCY_BUCKETS_MS = (50, 100, 250, 500, 1000, 2500)

_lock = threading.Lock()
_pending: dict[tuple[int, str], int] = {}
_last_flush = time.monotonic()


def _minute(ts: float) -> int:
    return int(ts // 60)


def record(*, duration_s: float, status: int, method: str, now: float | None = None) -> None:
    """Count one request (the middleware calls this; tests may too)."""
    REQUEST_SECONDS.labels(method=method, status=str(status)).observe(duration_s)
    minute = _minute(now if now is not None else time.time())
    ms = int(duration_s * 1000)
    bucket = next((str(b) for b in LATENCY_BUCKETS_MS if ms <= b), "inf")
    with _lock:
        for field, amount in (("n", 1), ("ms", ms), ("err", int(status >= 500)), (f"b{bucket}", 1)):
            if amount:
                _pending[(minute, field)] = _pending.get((minute, field), 0) + amount
    if time.monotonic() - _last_flush >= FLUSH_EVERY_S:
        flush()


def flush() -> None:
    """Add the totals summed in this process to the shared per-minute counters."""
    global _last_flush
    with _lock:
        pending = dict(_pending)
        _pending.clear()
        _last_flush = time.monotonic()
    for (minute, field), amount in pending.items():
        key = f"tp:req:{minute}:{field}"
        try:
            cache.add(key, 0, MINUTE_TTL_S)
            cache.incr(key, amount)
        except Exception:  # noqa: BLE001 - a cache hiccup loses a few seconds of statistics, nothing more
            log.warning("could not store request statistics", exc_info=True)
            return


def request_stats(*, minutes: int = 15, now: float | None = None) -> dict:
    """Per-minute requests, 5xx errors and latency over the last `minutes` (all processes).

    Returns {"minutes": [{"minute", "requests", "errors", "mean_ms"}…], "requests", "errors",
    "error_rate" (0–1, None without requests), "mean_ms", "p95_ms" (upper bound of the bucket
    holding the 95th percentile; None without requests or when it is beyond the last bucket,
    then "p95_beyond_buckets" is true)}."""
    flush()
    end = _minute(now if now is not None else time.time())
    fields = ["n", "ms", "err", *(f"b{b}" for b in LATENCY_BUCKETS_MS), "binf"]
    keys = [f"tp:req:{m}:{f}" for m in range(end - minutes + 1, end + 1) for f in fields]
    values = cache.get_many(keys)
    series, buckets = [], {f: 0 for f in fields if f.startswith("b")}
    total_n = total_ms = total_err = 0
    for m in range(end - minutes + 1, end + 1):
        get = lambda f: int(values.get(f"tp:req:{m}:{f}", 0) or 0)  # noqa: E731
        n, ms, err = get("n"), get("ms"), get("err")
        total_n, total_ms, total_err = total_n + n, total_ms + ms, total_err + err
        for f in buckets:
            buckets[f] += get(f)
        series.append({"minute": datetime.fromtimestamp(m * 60, tz=UTC).isoformat(),
                       "requests": n, "errors": err, "mean_ms": round(ms / n, 1) if n else None})
    p95, beyond = None, False
    if total_n:
        seen, target = 0, 0.95 * total_n
        for b in [*LATENCY_BUCKETS_MS, "inf"]:
            seen += buckets[f"b{b}"]
            if seen >= target:
                p95, beyond = (b, False) if b != "inf" else (None, True)
                break
    return {"minutes": series, "requests": total_n, "errors": total_err,
            "error_rate": round(total_err / total_n, 4) if total_n else None,
            "mean_ms": round(total_ms / total_n, 1) if total_n else None, "p95_ms": p95,
            "p95_beyond_buckets": beyond}


def _remember_exception(sender, request=None, **_):
    if request is not None:
        request._tp_exception = sys.exc_info()[1]


got_request_exception.connect(_remember_exception, dispatch_uid="dashboard.metrics.exception")


class RequestMetricsMiddleware:
    """Times each request; stores 5xx responses as RequestError rows (after the request id is set)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path.startswith(SKIP_PREFIXES):
            return self.get_response(request)
        started = time.perf_counter()
        response = self.get_response(request)
        record(duration_s=time.perf_counter() - started, status=response.status_code, method=request.method)
        if response.status_code >= 500:
            self._store_error(request, response)
        return response

    @staticmethod
    def _store_error(request, response) -> None:
        exc = getattr(request, "_tp_exception", None)
        error = f"{type(exc).__name__}: {exc}" if exc is not None else ""
        user = getattr(request, "user", None)
        try:
            RequestError.objects.create(
                occurred_at=timezone.now(), request_id=getattr(request, "request_id", "")[:64],
                method=request.method[:10], path=request.path[:300], status=response.status_code,
                error=redact(error)[:300], user=user.get_username() if user is not None and user.is_authenticated else "")
        except Exception:  # noqa: BLE001 - the database may be what failed
            log.warning("could not store the failed request %s", getattr(request, "request_id", ""), exc_info=True)


# --- /metrics ------------------------------------------------------------------------------------------

class PlatformCollector:
    """The platform's figures, read from the database at scrape time."""

    def describe(self):
        return []  # not read at registration (no database at import time)

    def collect(self):
        snapshot = health.platform_figures()
        yield _gauge("tradepulse_download_rows_per_second", "Candles stored per second by running downloads.",
                     snapshot["download_rows_per_second"])
        yield _counter("tradepulse_download_rows_stored", "Candles stored by downloads (all time).",
                       snapshot["download_rows_stored"])
        yield _counter("tradepulse_backtests_finished", "Backtests that finished (succeeded or failed).",
                       snapshot["backtests_finished"])
        yield _gauge("tradepulse_backtests_per_minute", "Backtests finished per minute over the last 5 minutes.",
                     snapshot["backtests_per_minute"])
        yield _counter("tradepulse_training_trials", "Training trials completed (all time).",
                       snapshot["trials_completed"])
        yield _gauge("tradepulse_training_trials_per_minute", "Trials completed per minute over the last 5 minutes.",
                     snapshot["trials_per_minute"])
        orders = CounterMetricFamily("tradepulse_orders", "Orders by status (all time).", labels=["status"])
        for status, n in snapshot["orders"].items():
            orders.add_metric([status], n)
        yield orders
        rejections = CounterMetricFamily("tradepulse_order_rejections", "Orders refused: by the exchange or by the "
                                         "pre-trade risk check.", labels=["by"])
        for by, n in snapshot["rejections"].items():
            rejections.add_metric([by], n)
        yield rejections
        alerts = GaugeMetricFamily("tradepulse_alerts_open", "Unresolved alerts by severity.", labels=["severity"])
        for severity, n in snapshot["alerts_open"].items():
            alerts.add_metric([severity], n)
        yield alerts
        deliveries = GaugeMetricFamily("tradepulse_alert_deliveries", "Alert deliveries by state.", labels=["state"])
        for state, n in snapshot["deliveries"].items():
            deliveries.add_metric([state], n)
        yield deliveries
        queues = GaugeMetricFamily("tradepulse_celery_queue_depth", "Tasks waiting per Celery queue.", labels=["queue"])
        for queue, depth in health.queue_depths().items():
            if depth is not None:
                queues.add_metric([queue], depth)
        yield queues
        last = health.last_sample()
        if last is not None:
            up = GaugeMetricFamily("tradepulse_component_up", "1 when the component answered at the last scheduled "
                                   "check.", labels=["component"])
            for name, c in last.components.items():
                up.add_metric([name], 1 if c.get("status") == "ok" else 0)
            yield up
            yield _gauge("tradepulse_last_health_check_age_seconds", "Seconds since the last scheduled health check "
                         "(beat and a default-queue worker are alive while this stays small).",
                         (timezone.now() - last.checked_at).total_seconds())


def _gauge(name, doc, value):
    g = GaugeMetricFamily(name, doc)
    g.add_metric([], value)
    return g


def _counter(name, doc, value):
    c = CounterMetricFamily(name, doc)
    c.add_metric([], value)
    return c


REGISTRY.register(PlatformCollector())


def _authorised(request) -> int:
    """200 when allowed; 401 (no credentials) or 403 (credentials that are not enough)."""
    if sees_everything(request.user):
        return 200
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer" and settings.TRADEPULSE_METRICS_TOKEN:
        return 200 if hmac.compare_digest(value.encode(), settings.TRADEPULSE_METRICS_TOKEN.encode()) else 403
    if scheme.lower() == "token" and value:
        try:
            user, _token = ContextTokenAuthentication().authenticate_credentials(value.encode())
        except exceptions.AuthenticationFailed:
            return 403
        return 200 if sees_everything(user) else 403
    return 403 if request.user.is_authenticated else 401


@never_cache
def metrics_view(request):
    status = _authorised(request)
    if status != 200:
        response = HttpResponse("Metrics are for operators, or a scraper with the metrics token.\n", status=status,
                                content_type="text/plain")
        if status == 401:
            response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(generate_latest(REGISTRY), content_type=CONTENT_TYPE_LATEST)

