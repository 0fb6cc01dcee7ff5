"""client_request_id (the caller's X-Request-ID, kept apart from ours); embedded SQLite refuses
DELETE of audit rows as PostgreSQL does (see apps.audit.signals for the test runner's reset).

On SQLite, adding the column rebuilds the table, which drops its triggers: both are created here.
"""
from django.db import migrations, models

SQLITE_UP = [
    "DROP TRIGGER IF EXISTS audit_event_no_update",
    """CREATE TRIGGER audit_event_no_update BEFORE UPDATE ON audit_auditevent
       BEGIN SELECT RAISE(ABORT, 'audit events are append-only: UPDATE refused'); END""",
    """CREATE TRIGGER audit_event_no_delete BEFORE DELETE ON audit_auditevent
       WHEN NOT tradepulse_audit_deletes_allowed()
       BEGIN SELECT RAISE(ABORT, 'audit events are append-only: DELETE refused'); END""",
]
SQLITE_DOWN = ["DROP TRIGGER IF EXISTS audit_event_no_delete"]


def _run(schema_editor, statements):
    if schema_editor.connection.vendor == "sqlite":
        with schema_editor.connection.cursor() as cursor:
            for sql in statements:
                cursor.execute(sql)


class Migration(migrations.Migration):
    dependencies = [("audit", "0002_append_only_triggers")]
    operations = [
        migrations.AddField(
            model_name="auditevent",
            name="client_request_id",
            field=models.CharField(blank=True, db_index=True, help_text="The X-Request-ID the caller sent, if any (not ours).",
                                   max_length=64),
        ),
        migrations.RunPython(lambda apps, se: _run(se, SQLITE_UP), lambda apps, se: _run(se, SQLITE_DOWN)),
    ]
