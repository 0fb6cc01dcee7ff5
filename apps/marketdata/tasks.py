"""Celery tasks (thin: they call services). Names start with "marketdata." → queue downloads."""
from celery import shared_task

from . import services


@shared_task(name="marketdata.download", ignore_result=True, acks_late=True)
def download(job_id: int) -> None:
    """Run one DownloadJob (created before this was queued); a second delivery does nothing."""
    services.download_run(job_id=job_id)


@shared_task(name="marketdata.apply_retention", ignore_result=True)
def apply_retention() -> dict:
    """Beat (daily, see migration 0002): apply the active retention policies."""
    return services.retention_apply(dry_run=False).as_dict()
