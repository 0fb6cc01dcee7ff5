"""manage.py apply_retention [--dry-run]"""
from __future__ import annotations

from django.core.management.base import CommandError

from tradepulse.core.commands import TradePulseCommand

from apps.marketdata import services
from apps.marketdata.retention import RetentionGuardError


class Command(TradePulseCommand):
    help = "Apply the active retention policies now (the beat task does it daily); --dry-run says what would go."

    def add_options(self, parser):
        parser.add_argument("--dry-run", action="store_true")

    def run(self, **options):
        try:
            report = services.retention_apply(dry_run=options["dry_run"])
        except RetentionGuardError as exc:
            raise CommandError(str(exc)) from None
        self.say(report.describe())
        return report.as_dict()
