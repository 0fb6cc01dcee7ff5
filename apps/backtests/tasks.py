from celery import shared_task

from . import services


@shared_task(name="backtests.run", ignore_result=True, acks_late=True)
def run_backtest(run_id: int) -> None:
    """Execute a queued backtest (queue `default`). Safe to deliver twice: the run is claimed."""
    services.backtest_execute(run_id)
