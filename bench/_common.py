"""What every database-backed bench does first: a fresh database of its own, Django pointed at
it (no Redis: live events go nowhere), set up. Migrating stays in each bench, inside the
try/finally that drops the database."""
from __future__ import annotations

import os

from bench_marketdata import recreate_database


def django_on_fresh_database(database_url: str, **env: str) -> None:
    """Recreate `database_url`, point DATABASE_URL at it (plus any `env` variables) and run
    django.setup()."""
    recreate_database(database_url)
    os.environ["DATABASE_URL"] = database_url
    os.environ.pop("REDIS_URL", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tradepulse.settings")
    os.environ.update(env)
    import django

    django.setup()
