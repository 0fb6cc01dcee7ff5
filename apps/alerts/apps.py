from django.apps import AppConfig


class AlertsConfig(AppConfig):
    name = "apps.alerts"
    label = "alerts"
    verbose_name = "Alerts"

    def ready(self):
        from tradepulse.core import jobrunner

        from . import receivers, tasks  # noqa: F401 - tasks: registered in every process that queues them

        jobrunner.job_finished.connect(receivers.on_job_finished, dispatch_uid="alerts.job_finished")
        jobrunner.job_recovered.connect(receivers.on_job_recovered, dispatch_uid="alerts.job_recovered")
