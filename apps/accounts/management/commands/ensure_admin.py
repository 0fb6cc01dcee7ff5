"""Make sure an admin exists: password from TRADEPULSE_ADMIN_PASSWORD, else generated and printed once."""
from django.conf import settings

from apps.accounts.services import ensure_admin
from tradepulse.core.commands import TradePulseCommand


class Command(TradePulseCommand):
    help = __doc__

    def add_options(self, parser):
        parser.add_argument("--username", default="admin")

    def run(self, *, username, **_):
        user, created, generated = ensure_admin(username=username, password=settings.ADMIN_PASSWORD)
        if generated:
            self.say(self.style.WARNING(
                f"Created admin user '{user.username}' with password: {generated}\n"
                "This is shown once. Set TRADEPULSE_ADMIN_PASSWORD to choose it yourself."))
        else:
            self.say(f"Admin user '{user.username}' {'created' if created else 'exists'}.")
        return {"username": user.username, "created": created, "generated_password": generated}
