"""The loop's front doors: the beat task `trading.tick` (queue `trading`) queues one tick per due
deployment, `run_trading --deployment ID --once --json` runs one through the same service, and
no tick, order or log line of the loop ever shows an API key or secret."""
from __future__ import annotations

import json
import logging
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from apps.audit.models import AuditEvent
from apps.trading import tasks
from apps.trading.models import Deployment, Order

from .conftest import API_KEY, API_SECRET, NOW
from .test_engine_loop import HISTORY, HOUR, setup  # noqa: F401 - fixture
from .test_live_loop import live  # noqa: F401 - fixture


def test_the_loop_is_registered_and_scheduled_on_the_trading_queue(settings):
    from tradepulse.celery import app

    app.loader.import_default_modules()
    entry = settings.CELERY_BEAT_SCHEDULE["trading-tick"]
    assert entry["task"] == "trading.tick" and entry["task"] in app.tasks
    assert "trading.tick_deployment" in app.tasks
    assert entry["schedule"] == float(settings.TRADEPULSE_TRADING_TICK_S)
    assert settings.CELERY_TASK_ROUTES["trading.*"] == {"queue": "trading"}


def test_the_beat_task_queues_a_tick_for_each_due_deployment(setup, monkeypatch):
    from apps.trading import services

    deployment = setup["deployment"]
    services.deployment_activate(deployment=deployment, reason="go")
    queued = []
    monkeypatch.setattr(tasks.tick_deployment, "delay", lambda pk: queued.append(pk))
    assert tasks.tick() == 1 and queued == [deployment.pk]
    # run what was queued, as the worker would: the deployment acts on its newest closed bar
    result = tasks.tick_deployment(deployment.pk)
    assert result["bars"] == 1 and Deployment.objects.get(pk=deployment.pk).last_bar_time is not None
    queued.clear()
    assert tasks.tick() == 0 and queued == []  # nothing new until the next bar closes


def test_run_trading_once_json_is_one_tick_through_the_service(setup):
    from apps.trading import services

    deployment = setup["deployment"]
    services.deployment_activate(deployment=deployment, reason="go")
    out = StringIO()
    call_command("run_trading", "--deployment", str(deployment.pk), "--once", "--no-fetch", "--json", stdout=out)
    data = json.loads(out.getvalue())
    assert data["deployment"] == deployment.pk and data["bars"] == 1 and data["equity"] == "5000.00000000"
    assert AuditEvent.objects.filter(action="trading.deployment.activated").exists()
    with pytest.raises(CommandError, match="no deployment 999999"):
        call_command("run_trading", "--deployment", "999999", "--once")
    with pytest.raises(CommandError, match="--deployment ID"):
        call_command("run_trading")


def test_a_live_tick_never_logs_or_stores_the_key(live, sim, caplog):
    from apps.trading import services

    with caplog.at_level(logging.DEBUG):
        result = services.deployment_tick_safely(deployment=live, now_ms=NOW + 60_000, fetch=False)
    order = Order.objects.get(deployment=live)
    stored = json.dumps([order.raw, order.decision, order.verdict, order.reason, result], default=str)
    audit = json.dumps([[e.changes, e.metadata, e.reason] for e in AuditEvent.objects.all()], default=str)
    for text in (caplog.text, stored, audit):
        assert API_KEY not in text and API_SECRET not in text
