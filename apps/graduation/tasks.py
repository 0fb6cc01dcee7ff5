"""Graduation tasks: thin, they call services."""
from __future__ import annotations

from celery import shared_task

from tradepulse.core import context

from . import services


@shared_task(name="graduation.evaluate_all", ignore_result=True)
def evaluate_all() -> int:
    """Hold every config in an automatic stage against its policy (beat, periodically).
    Returns how many decisions were written."""
    with context.acting(actor_label="system:graduation"):
        return len(services.configs_evaluate_all())
