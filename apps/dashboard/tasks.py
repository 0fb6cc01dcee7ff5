from celery import shared_task

from tradepulse.core import events

from .health import public_view, report, run_checks


@shared_task(name="dashboard.publish_health", ignore_result=True)
def publish_health():
    """Every 30 s (beat): the readiness checks, to every signed-in dashboard via `system`.

    Everyone gets the statuses; operators then get the details too (sent second, so an
    operator's page that also follows `system` ends on the detailed report).
    """
    health = report(*run_checks())
    events.publish("system.health", public_view(health), topics=["system"], ops=False)
    events.publish("system.health", health, ops=True)
