"""/health/live (the process answers) and /health/ready (every part it needs answers).

Each component reports status, latency in ms and, when down, the error. Ready is 503 when a
required component is down, so a load balancer stops sending traffic. The details (worker host
names, errors, latencies) are for operators; everyone else, anonymous probes included, gets
each component's status only (`public_view`).
"""
from __future__ import annotations

import time
import uuid

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache

from tradepulse.celery import app as celery_app
from tradepulse.core import embedded
from tradepulse.core.permissions import sees_everything

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
    if settings.EMBEDDED:
        if not embedded.worker_alive():
            raise RuntimeError("the embedded worker thread is not running")
        return {"workers": ["embedded@tradepulse"]}
    replies = celery_app.control.ping(timeout=1.0)
    if not replies:
        raise RuntimeError("no Celery worker answered a ping within 1 s")
    return {"workers": sorted(name for reply in replies for name in reply)}


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


@never_cache
def live(_request):
    return JsonResponse({"status": "ok"})


@never_cache
def ready(request):
    ok, components = run_checks()
    health = report(ok, components)
    if not sees_everything(request.user):
        health = public_view(health)
    return JsonResponse(health, status=200 if ok else 503)
