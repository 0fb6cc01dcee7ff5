"""manage.py backup [--list] [--prune] [--json]: take a backup of the whole database now."""
from __future__ import annotations

from django.core.management.base import CommandError

from apps.ops import services
from apps.ops.models import Backup, BackupState
from tradepulse.core.commands import TradePulseCommand


class Command(TradePulseCommand):
    help = "Back up the whole database into TRADEPULSE_BACKUP_DIR (pg_dump, or SQLite's backup API)."

    def add_options(self, parser):
        parser.add_argument("--list", action="store_true", help="list the backups instead of taking one")
        parser.add_argument("--prune", action="store_true", help="also apply the retention to scheduled backups")

    def run(self, **options):
        if options["list"]:
            services.backups_scan()
            rows = [services.backup_data(b) for b in Backup.objects.all()]
            for b in rows:
                self.say(f"{b['name']}  {b['state']:<9} {b['size_bytes'] or 0:>12,} bytes  {b['engine']}")
            return {"backups": rows}
        backup = services.backup_create(kind="manual", enqueue=False, reason="backup command")
        backup = services.backup_run(backup_id=backup.pk)
        if backup.state != BackupState.SUCCEEDED:
            raise CommandError(f"backup failed: {backup.error}")
        pruned = services.backups_prune() if options["prune"] else []
        self.say(f"{backup.name}: {backup.size_bytes:,} bytes ({backup.engine}), sha256 {backup.sha256[:12]}…")
        return {"backup": services.backup_data(backup), "pruned": pruned}
