from celery import shared_task

from . import services


@shared_task(name="training.run_worker", ignore_result=True, acks_late=True)
def run_training_worker(run_id: int, worker_id: str | None = None) -> None:
    """One worker of a training run (queue `training`): claims or joins the run through the job
    runner and runs trials of its studies; the last worker to finish validates. Safe to deliver
    twice. `worker_id` names the worker on the trials it runs."""
    services.training_execute_worker(run_id, worker_id or f"run-{run_id}-w0")
