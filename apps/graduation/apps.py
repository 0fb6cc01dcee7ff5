from django.apps import AppConfig


class GraduationConfig(AppConfig):
    name = "apps.graduation"
    label = "graduation"
    verbose_name = "Graduation"

    def ready(self):
        from tradepulse.core import events

        # `graduation-policies`: policy changes, for everyone who may read the policies.
        events.register_topic("graduation", lambda user, key: key == "policies"
                              and user.has_perm("graduation.view_graduationpolicy"))
