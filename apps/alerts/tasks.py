"""Alert delivery tasks (queue `default`): thin, they call services."""
from __future__ import annotations

import logging

from celery import shared_task

from . import services

log = logging.getLogger(__name__)


@shared_task(name="alerts.deliver", ignore_result=True)
def deliver(delivery_id: int) -> None:
    """Send one delivery now (queued after the alert's transaction commits)."""
    services.delivery_attempt(delivery_id=delivery_id)


@shared_task(name="alerts.deliver_due", ignore_result=True)
def deliver_due() -> int:
    """Beat (every 15 s): send what is due — retries after backoff, alerts held for quiet hours.
    Returns how many attempts were made."""
    attempted = 0
    for delivery_id in services.deliveries_due():
        try:
            if services.delivery_attempt(delivery_id=delivery_id) is not None:
                attempted += 1
        except Exception:  # one broken row must not stop the others
            log.exception("delivery %s failed to run", delivery_id)
    return attempted
