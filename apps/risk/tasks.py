"""Risk tasks: thin, they call services."""
from __future__ import annotations

from celery import shared_task

from tradepulse.core import context

from . import services


@shared_task(name="risk.watch", ignore_result=True)
def watch() -> dict:
    """Every minute (beat): record expired overrides, adapt sizing, trip the kill switch where
    daily loss or drawdown breached its limit."""
    with context.acting(actor_label="system:risk-watch"):
        return services.risk_watch()
