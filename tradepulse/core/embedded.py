"""Embedded mode: a Celery worker and beat running as threads of the web process.

With no REDIS_URL the broker is kombu's in-memory transport, which only works inside one
process, so `manage.py serve` runs the worker and beat here, next to daphne.
"""
from __future__ import annotations

import logging
import threading

from django.conf import settings

log = logging.getLogger(__name__)
_state: dict[str, object] = {}


def start_worker(*, concurrency: int = 4) -> threading.Thread:
    """Start a threaded Celery worker consuming every queue; returns its thread."""
    from tradepulse.celery import app

    worker = app.WorkController(
        pool_cls="threads",
        concurrency=concurrency,
        queues=list(settings.CELERY_WORKER_QUEUES),
        hostname="embedded@tradepulse",
        loglevel="INFO",
        without_heartbeat=True,
        without_mingle=True,
        without_gossip=True,
    )
    thread = threading.Thread(target=worker.start, name="celery-worker", daemon=True)
    thread.start()
    _state["worker"], _state["worker_thread"] = worker, thread
    log.info("embedded celery worker started (%s threads)", concurrency)
    return thread


def start_beat() -> threading.Thread:
    from celery.beat import EmbeddedService

    from tradepulse.celery import app

    service = EmbeddedService(app, thread=True, scheduler_cls=settings.CELERY_BEAT_SCHEDULER)
    service.daemon = True
    service.start()
    _state["beat"] = service
    log.info("embedded celery beat started")
    return service


def worker_alive() -> bool:
    thread = _state.get("worker_thread")
    return bool(thread and thread.is_alive())


def stop() -> None:
    worker = _state.get("worker")
    if worker is not None:
        worker.stop(in_sighandler=False)
    beat = _state.get("beat")
    if beat is not None:
        beat.stop()
