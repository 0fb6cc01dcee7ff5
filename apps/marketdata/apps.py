from django.apps import AppConfig


class MarketdataConfig(AppConfig):
    name = "apps.marketdata"
    label = "marketdata"
    verbose_name = "Market data"

    def ready(self):
        from tradepulse.core import events

        from . import tasks  # noqa: F401  (registers the tasks: services enqueue them by name)
        from .models import DownloadJob

        # `download-<id>`: followed by whoever may see that job (owner, shares, operators).
        events.register_model_topic("download", DownloadJob)
