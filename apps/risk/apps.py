from django.apps import AppConfig


class RiskConfig(AppConfig):
    name = "apps.risk"
    label = "risk"
    verbose_name = "Risk"

    def ready(self):
        from tradepulse.core import events

        # Global risk (limits, kill switch) concerns everyone signed in: anyone may follow it.
        events.register_topic("risk", lambda user, key: user.is_authenticated and key == "global")
