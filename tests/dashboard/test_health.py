"""Health endpoints report each component with latency; ready is 503 when a required part is down."""
from __future__ import annotations

import time

import pytest

from apps.dashboard import health


def test_live_is_ok(client, db):
    response = client.get("/health/live")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_ready_reports_components_with_latency(client, olivia, monkeypatch):
    monkeypatch.setitem(health.CHECKS, "workers", lambda: {"workers": ["w1@host"]})
    client.force_login(olivia)
    response = client.get("/health/ready")
    body = response.json()
    assert response.status_code == 200, body
    assert set(body["components"]) >= {"database", "broker", "workers", "channel_layer"}
    for component in body["components"].values():
        assert component["status"] == "ok" and component["latency_ms"] >= 0


def test_ready_is_503_naming_the_part_that_is_down(client, olivia, monkeypatch):
    monkeypatch.setitem(health.CHECKS, "workers", lambda: {"workers": ["w1@host"]})
    client.force_login(olivia)

    def broken():
        time.sleep(0.06)  # a refusal that took 60 ms: the reported latency must show it
        raise ConnectionError("connection refused")

    monkeypatch.setitem(health.CHECKS, "channel_layer", broken)
    response = client.get("/health/ready")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "down"
    down = body["components"]["channel_layer"]
    latency = down.pop("latency_ms")
    assert down == {"status": "down", "error": "ConnectionError: connection refused", "required": True}
    assert 60 <= latency < 5_000
    assert all(c["status"] == "ok" for name, c in body["components"].items() if name != "channel_layer")


@pytest.mark.parametrize("who", [None, "alice"])
def test_ready_shows_no_host_names_or_errors_but_to_operators(client, who, alice, monkeypatch):
    """Anonymous probes and traders learn which part is down, not where it runs or why."""
    monkeypatch.setitem(health.CHECKS, "workers", lambda: {"workers": ["celery@worker-7.internal"]})

    def broken():
        raise ConnectionError("redis-prod.internal:6379 refused")

    monkeypatch.setitem(health.CHECKS, "channel_layer", broken)
    if who:
        client.force_login(alice)
    response = client.get("/health/ready")
    assert response.status_code == 503
    body = response.json()
    assert body["components"]["workers"] == {"status": "ok", "required": True}
    assert body["components"]["channel_layer"] == {"status": "down", "required": True}
    assert "internal" not in response.content.decode()


def test_published_health_keeps_details_for_operators(alice, olivia, published, monkeypatch, django_capture_on_commit_callbacks):
    from apps.dashboard.tasks import publish_health

    monkeypatch.setitem(health.CHECKS, "workers", lambda: {"workers": ["celery@worker-7.internal"]})
    with django_capture_on_commit_callbacks(execute=True):
        publish_health()
    to_system = [m for groups, m in published if groups == ["topic-system"]]
    to_ops = [m for groups, m in published if groups == ["ops"] and m["type"] == "system.health"]
    assert len(to_system) == len(to_ops) == 1
    assert "internal" not in str(to_system[0]) and "worker-7" in str(to_ops[0])


@pytest.mark.django_db(transaction=True)
def test_workers_check_answers_with_a_real_worker(settings):
    """Without a worker the check is down; with one running it names it."""
    if settings.EMBEDDED:
        pytest.skip("embedded mode checks the in-process worker thread instead")
    from celery.contrib.testing.worker import start_worker

    from tradepulse.celery import app

    ok, components = health.run_checks()
    assert components["workers"]["status"] == "down"
    with start_worker(app, pool="solo", perform_ping_check=False, queues=["default"]):
        ok, components = health.run_checks()
    assert components["workers"]["status"] == "ok", components["workers"]
    assert ok
