from django.apps import AppConfig


class TrainingConfig(AppConfig):
    name = "apps.training"
    label = "training"
    verbose_name = "Training"

    def ready(self):
        from tradepulse.core import events

        from . import tasks  # noqa: F401  (registers the task: the job runner enqueues it by name)
        from .models import TrainingRun

        events.register_model_topic("training", TrainingRun)
