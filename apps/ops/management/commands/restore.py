"""manage.py restore NAME|--latest --reason "…" --yes [--json]: replace the database with a backup.

Refuses a backup from a newer schema (a migration this code does not know), another database
engine, or a file whose checksum changed; an older schema is migrated forward after the restore."""
from __future__ import annotations

from django.core.management.base import CommandError

from apps.ops import services
from apps.ops.models import Backup, BackupState
from tradepulse.core.commands import TradePulseCommand


class Command(TradePulseCommand):
    help = "Restore the whole database from a backup (everything stored since is lost)."

    def add_options(self, parser):
        parser.add_argument("name", nargs="?", help="backup name (see `backup --list`)")
        parser.add_argument("--latest", action="store_true", help="the newest succeeded backup")
        parser.add_argument("--reason", default="", help="why (recorded in the audit trail)")
        parser.add_argument("--yes", action="store_true", help="confirm: the current data is replaced")

    def run(self, **options):
        services.backups_scan()
        if options["latest"]:
            backup = Backup.objects.filter(state=BackupState.SUCCEEDED).order_by("-created_at").first()
        elif options.get("name"):
            backup = Backup.objects.filter(name=options["name"]).first()
        else:
            raise CommandError("name a backup, or pass --latest")
        if backup is None:
            raise CommandError(f"no such backup {options.get('name') or '(none succeeded yet)'}")
        if not options["yes"]:
            raise CommandError(f"restoring {backup.name} replaces every row stored since: pass --yes to confirm")
        result = services.backup_restore(backup=backup, reason=options["reason"])
        self.say(f"restored {backup.name}" + (f"; migrated {len(result['migrated'])}" if result["migrated"] else ""))
        return result
