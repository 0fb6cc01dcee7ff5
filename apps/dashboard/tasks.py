from celery import shared_task

from tradepulse.core import events

from . import status
from .health import health_record, public_view, report, run_checks


@shared_task(name="dashboard.publish_health", ignore_result=True)
def publish_health():
    """Every 30 s (beat): the readiness checks, recorded (history, alerts) and published.

    Everyone gets the statuses on `system`; operators then get the details too (sent second, so
    an operator's page that also follows `system` ends on the detailed report), and the whole
    system status (queues, accounts, freshness, requests, errors) as `system.status`.
    """
    ok, components = run_checks()
    health_record(ok, components)
    health = report(ok, components)
    events.publish("system.health", public_view(health), topics=["system"], ops=False)
    events.publish("system.health", health, ops=True)
    events.publish("system.status", status.system_status(), ops=True)
