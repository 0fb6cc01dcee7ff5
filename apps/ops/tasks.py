"""Backup tasks (queue `default`): thin, they call services."""
from __future__ import annotations

from celery import shared_task

from . import services


@shared_task(name="ops.backup_run", ignore_result=True)
def backup_run(backup_id: int) -> None:
    services.backup_run(backup_id=backup_id)


@shared_task(name="ops.backup_daily", ignore_result=True)
def backup_daily() -> dict:
    """Beat, daily: a scheduled backup taken here, then the retention applied."""
    backup = services.backup_create(kind="scheduled", enqueue=False, reason="daily schedule")
    backup = services.backup_run(backup_id=backup.pk)
    return {"backup": backup.name, "state": backup.state, "pruned": services.backups_prune()}
