from celery import shared_task

from tradepulse.core import events

from .health import run_checks


@shared_task(name="dashboard.publish_health", ignore_result=True)
def publish_health():
    """Every 30 s (beat): the readiness checks, to every signed-in dashboard via `system`."""
    ok, components = run_checks()
    events.publish("system.health", {"status": "ok" if ok else "down", "components": components},
                   topics=["system"], ops=False)
