from django.apps import AppConfig
from django.db.models.signals import post_migrate


class AccountsConfig(AppConfig):
    name = "apps.accounts"
    label = "accounts"
    verbose_name = "Accounts"

    def ready(self):
        from .roles import sync_roles

        # Permissions of apps migrated later are created after migrate; keep roles in step.
        post_migrate.connect(sync_roles, dispatch_uid="tradepulse-sync-roles")
