"""/health/live (the process answers) and /health/ready (every part it needs answers).

Each component reports status, latency in ms and, when down, the error. Ready is 503 when a
required component is down, so a load balancer stops sending traffic. The details (worker host
names, errors, latencies) are for operators; everyone else, anonymous probes included, gets
each component's status only (`public_view`).

The beat task `dashboard.publish_health` (every 30 s) runs the checks and `health_record`s them:
a HealthSample (the page's history, and proof that beat and a default-queue worker are alive),
and alerts: a required component down raises a critical system alert, its recovery resolves it;
a queue no worker consumes raises an error. Because a dead worker cannot run that task, /health/ready
(probed by load balancers, served by the web process) raises the same alerts too, and its
optional `scheduler` component goes down when no scheduled check has run for a while.
"""
from __future__ import annotations

import time
import uuid
from datetime import timedelta

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connection, models
from django.http import JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache

from apps.alerts.models import Alert, AlertState, Delivery
from apps.alerts.selectors import open_counts_by_severity
from apps.alerts.services import alert_raise, alert_resolve
from apps.backtests.models import BacktestRun
from apps.marketdata.models import DownloadJob
from apps.trading.models import Order, OrderStatus
from apps.training.models import TrainingTrial
from tradepulse.celery import app as celery_app
from tradepulse.core import embedded
from tradepulse.core.jobs import JobState
from tradepulse.core.permissions import sees_everything

from .models import HealthSample, RequestError

HEALTH_EVERY_S = 30  # the beat schedule of dashboard.publish_health (settings.CELERY_BEAT_SCHEDULE)
SCHEDULER_STALE_AFTER_S = 3 * HEALTH_EVERY_S
KEEP_SAMPLES = timedelta(hours=24)
KEEP_ERRORS = timedelta(days=7)

# name -> check() raising on failure (returning optional detail). Apps may add their own.
CHECKS = {}
REQUIRED = set()


def register_check(name: str, *, required: bool = True):
    def decorator(func):
        CHECKS[name] = func
        if required:
            REQUIRED.add(name)
        return func

    return decorator


@register_check("database")
def _database():
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return {"vendor": connection.vendor}


@register_check("broker")
def _broker():
    if settings.EMBEDDED:
        return {"transport": "memory (embedded)"}
    with celery_app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)
    return {"transport": "redis"}


@register_check("workers")
def _workers():
    """The workers that answer, and which of our queues each consumes (`queues`: name -> workers)."""
    if settings.EMBEDDED:
        if not embedded.worker_alive():
            raise RuntimeError("the embedded worker thread is not running")
        return {"workers": ["embedded@tradepulse"],
                "queues": {q: ["embedded@tradepulse"] for q in settings.CELERY_WORKER_QUEUES}}
    replies = celery_app.control.inspect(timeout=1.0).active_queues()
    if not replies:
        raise RuntimeError("no Celery worker answered within 1 s")
    queues = {q: [] for q in settings.CELERY_WORKER_QUEUES}
    for worker, consumed in replies.items():
        for queue in consumed or ():
            queues.setdefault(queue["name"], []).append(worker)
    return {"workers": sorted(replies), "queues": {q: sorted(w) for q, w in queues.items()}}


@register_check("channel_layer")
def _channel_layer():
    layer = get_channel_layer()
    if layer is None:
        raise RuntimeError("no channel layer configured")

    async def round_trip():
        channel = await layer.new_channel()
        token = uuid.uuid4().hex
        await layer.send(channel, {"type": "health.ping", "token": token})
        message = await layer.receive(channel)
        if message.get("token") != token:
            raise RuntimeError("channel layer returned a different message")

    async_to_sync(round_trip)()
    return {"backend": type(layer).__name__}


def last_sample() -> HealthSample | None:
    return HealthSample.objects.order_by("-checked_at").first()


@register_check("scheduler", required=False)
def _scheduler():
    """Scheduled checks keep coming: beat sends them and a default-queue worker runs them."""
    last = last_sample()
    if last is None:
        return {"last_check": None, "note": "no scheduled check has run yet"}
    age = (timezone.now() - last.checked_at).total_seconds()
    if age > SCHEDULER_STALE_AFTER_S:
        raise RuntimeError(f"no scheduled health check for {age:.0f} s: beat or every default-queue worker "
                           "is not running")
    return {"last_check": last.checked_at.isoformat(), "age_s": round(age, 1)}


def run_checks() -> tuple[bool, dict]:
    results = {}
    for name, check in CHECKS.items():
        started = time.perf_counter()
        try:
            detail = check() or {}
            results[name] = {"status": "ok", **detail}
        except Exception as exc:  # noqa: BLE001 - every failure is reported, none crashes the probe
            results[name] = {"status": "down", "error": f"{type(exc).__name__}: {exc}"[:300]}
        results[name]["latency_ms"] = round((time.perf_counter() - started) * 1000, 1)
        results[name]["required"] = name in REQUIRED
    ok = all(results[n]["status"] == "ok" for n in REQUIRED if n in results)
    return ok, results


def report(ok: bool, components: dict) -> dict:
    return {"status": "ok" if ok else "down", "components": components}


def public_view(health: dict) -> dict:
    """The report without details: which component is up or down, nothing about hosts or errors."""
    return {"status": health["status"],
            "components": {name: {"status": c["status"], "required": c["required"]}
                           for name, c in health["components"].items()}}


# --- recording and alerting -------------------------------------------------------------------------

def health_alerts(components: dict) -> None:
    """Raise a system alert for each component down (critical when required) and for each of our
    queues no worker consumes; resolve those whose cause went away. Cheap when all is well: one
    query for the open ones."""
    open_keys = set(Alert.objects.filter(source="system", state__in=(AlertState.OPEN, AlertState.ACKNOWLEDGED))
                    .values_list("key", flat=True))
    wanted: dict[str, tuple[str, str, str]] = {}
    for name, c in components.items():
        if c.get("status") != "ok":
            wanted[f"component:{name}"] = ("critical" if c.get("required") else "error", f"{name} is down",
                                           c.get("error", ""))
    queues = (components.get("workers") or {}).get("queues") or {}
    for queue, workers in queues.items():
        if queue in settings.CELERY_WORKER_QUEUES and not workers:
            wanted[f"queue:{queue}"] = ("error", f"No worker consumes the {queue} queue",
                                        f"Tasks sent to '{queue}' wait until a worker for it starts.")
    for key, (severity, title, message) in wanted.items():
        alert_raise(severity=severity, source="system", title=title, message=message, key=key,
                    context={"component": key.split(":", 1)[1]})
    for key in open_keys - set(wanted):
        if key.startswith("component:") and key.split(":", 1)[1] in components or (
                key.startswith("queue:") and queues):
            alert_resolve(source="system", key=key, reason=f"{key.split(':', 1)[1]} answers again.")


def health_record(ok: bool, components: dict) -> HealthSample:
    """Store one scheduled check, raise/resolve its alerts, prune old samples and errors."""
    sample = HealthSample.objects.create(checked_at=timezone.now(), ok=ok, components=components)
    health_alerts(components)
    HealthSample.objects.filter(checked_at__lt=sample.checked_at - KEEP_SAMPLES).delete()
    RequestError.objects.filter(occurred_at__lt=sample.checked_at - KEEP_ERRORS).delete()
    return sample


# --- figures the health page and /metrics show -----------------------------------------------------------

def queue_depths() -> dict[str, int | None]:
    """Tasks waiting in each of our queues (None when the broker cannot say)."""
    depths: dict[str, int | None] = {}
    try:
        with celery_app.connection_for_read() as conn:
            channel = conn.default_channel
            for queue in settings.CELERY_WORKER_QUEUES:
                try:
                    depths[queue] = int(channel._size(queue))  # kombu's per-transport count (Redis: LLEN)
                except Exception:  # noqa: BLE001 - an unknown queue or transport: not measurable
                    depths[queue] = None
    except Exception:  # noqa: BLE001 - the broker is down: the broker component says so
        depths = {q: None for q in settings.CELERY_WORKER_QUEUES}
    return depths


def _per_minute(queryset, field: str, minutes: int = 5) -> float:
    since = timezone.now() - timedelta(minutes=minutes)
    return round(queryset.filter(**{f"{field}__gte": since}).count() / minutes, 2)


def platform_figures() -> dict:
    """The platform's own throughput and trouble: download rows/s, backtests and trials per minute,
    orders, rejections (exchange / risk), open alerts, deliveries."""
    finished = BacktestRun.objects.filter(state__in=(JobState.SUCCEEDED, JobState.FAILED))
    trials = TrainingTrial.objects.filter(completed_at__isnull=False)
    orders = dict(Order.objects.values_list("status").annotate(n=models.Count("id")).values_list("status", "n"))
    return {
        "download_rows_per_second": round(DownloadJob.objects.filter(state=JobState.RUNNING).aggregate(
            v=models.Sum("candles_per_second"))["v"] or 0.0, 1),
        "download_rows_stored": DownloadJob.objects.aggregate(v=models.Sum("rows_stored"))["v"] or 0,
        "downloads_running": DownloadJob.objects.filter(state=JobState.RUNNING).count(),
        "backtests_finished": finished.count(),
        "backtests_per_minute": _per_minute(finished, "finished_at"),
        "trials_completed": trials.count(),
        "trials_per_minute": _per_minute(trials, "completed_at"),
        "orders": {s: orders.get(s, 0) for s in OrderStatus.values},
        "rejections": {"exchange": orders.get(OrderStatus.REJECTED, 0),
                       "risk": Order.objects.filter(reason_code="risk_denied").count()},
        "alerts_open": open_counts_by_severity(),
        "deliveries": dict(Delivery.objects.values_list("state").annotate(n=models.Count("id"))
                           .values_list("state", "n")),
    }


@never_cache
def live(_request):
    return JsonResponse({"status": "ok"})


@never_cache
def ready(request):
    ok, components = run_checks()
    try:
        health_alerts(components)  # workers may all be dead: then only this process can tell
    except Exception:  # noqa: BLE001 - the probe answers whatever the alert system does
        pass
    health = report(ok, components)
    if not sees_everything(request.user):
        health = public_view(health)
    return JsonResponse(health, status=200 if ok else 503)
