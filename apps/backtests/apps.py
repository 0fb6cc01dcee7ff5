from django.apps import AppConfig


class BacktestsConfig(AppConfig):
    name = "apps.backtests"
    label = "backtests"
    verbose_name = "Backtests and training"

    def ready(self):
        from tradepulse.core import events

        from .models import BacktestRun, TrainingRun

        events.register_model_topic("backtest", BacktestRun)
        events.register_model_topic("training", TrainingRun)
