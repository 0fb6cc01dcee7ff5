"""Celery tasks of the shared core (thin: they call the job runner)."""
from celery import shared_task

from tradepulse.core import jobrunner


@shared_task(name="jobs.recover_lost", ignore_result=True)
def recover_lost() -> list[dict]:
    """Beat (every TRADEPULSE_JOB_RECOVER_EVERY_S): re-queue or fail jobs whose worker died."""
    return jobrunner.recover_lost_jobs()
