from django.apps import AppConfig


class DashboardConfig(AppConfig):
    name = "apps.dashboard"
    label = "dashboard"
    verbose_name = "Dashboard"

    def ready(self):
        from tradepulse.core import events

        # Anyone signed in may follow system-wide health; only oneself may follow user-<id>.
        events.register_topic("system", lambda user, key: user.is_authenticated and key == "")
        events.register_topic("user", lambda user, key: key == str(user.pk))
