from django.apps import AppConfig


class OpsConfig(AppConfig):
    name = "apps.ops"
    label = "ops"
    verbose_name = "Operations"

    def ready(self):
        from . import tasks  # noqa: F401 - registered in every process that queues them (web: "back up now")
