from django.apps import AppConfig


class TrainingConfig(AppConfig):
    name = "apps.training"
    label = "training"
    verbose_name = "Training"

    def ready(self):
        from tradepulse.core import events

        from .models import TrainingRun

        events.register_model_topic("training", TrainingRun)
