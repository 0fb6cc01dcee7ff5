from django.apps import AppConfig


class TradingConfig(AppConfig):
    name = "apps.trading"
    label = "trading"
    verbose_name = "Trading"

    def ready(self):
        from tradepulse.core import events

        from .models import Deployment, ExchangeAccount

        # Pages follow `deployment-<id>` and `account-<id>`: users who may see the object may join.
        events.register_model_topic("deployment", Deployment)
        events.register_model_topic("account", ExchangeAccount)
