"""Re-encrypt every stored secret (exchange keys, webhook URLs...) with the newest key.

Put the new key first in TRADEPULSE_ENCRYPTION_KEYS (keep the old ones after it), run this,
then drop the old keys. Safe to run again: values already under the newest key are left alone.
"""
from __future__ import annotations

from apps.audit.services import audit_record
from tradepulse.core.commands import TradePulseCommand
from tradepulse.core.crypto import DecryptionError, rotate_all


class Command(TradePulseCommand):
    help = "Re-encrypt every encrypted value with the newest TRADEPULSE_ENCRYPTION_KEYS key."

    def add_options(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="Count what would be re-encrypted; change nothing.")

    def run(self, **options) -> dict:
        try:
            summary = rotate_all(dry_run=options["dry_run"])
        except DecryptionError as exc:
            raise ValueError(str(exc)) from None
        if not options["dry_run"]:
            audit_record("core.encryption.rotated", reason="re-encrypted with the newest key",
                         metadata={"values": summary["values"], "rotated": summary["rotated"],
                                   "fields": list(summary["fields"])})
        if summary["key_derived"]:
            self.say("Note: no TRADEPULSE_ENCRYPTION_KEYS set; the development key derived from SECRET_KEY is in use.")
        verb = "would re-encrypt" if options["dry_run"] else "re-encrypted"
        self.say(f"{verb} {summary['rotated']} of {summary['values']} value(s) in {len(summary['fields'])} field(s).")
        return summary
