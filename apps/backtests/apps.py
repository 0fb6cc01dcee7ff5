from django.apps import AppConfig


class BacktestsConfig(AppConfig):
    name = "apps.backtests"
    label = "backtests"
    verbose_name = "Backtests"

    def ready(self):
        from tradepulse.core import events

        from . import tasks  # noqa: F401  (registers the task and, through services, the job type)
        from .models import BacktestRun

        events.register_model_topic("backtest", BacktestRun)
