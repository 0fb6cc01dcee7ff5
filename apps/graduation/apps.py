from django.apps import AppConfig


class GraduationConfig(AppConfig):
    name = "apps.graduation"
    label = "graduation"
    verbose_name = "Graduation"
