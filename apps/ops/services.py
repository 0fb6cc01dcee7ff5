"""Backups: take one (pg_dump custom format, or SQLite's online backup API), restore one (refusing
a newer schema, then migrating an older one forward), keep a retention, index the files.

- `backup_create` stores a queued row and (after commit) queues `ops.backup_run`; the `backup`
  command runs it inline. `backup_run` writes `<name>.dump|.sqlite3` and `<name>.json` (the
  manifest: engine, applied migrations, sha256, size) into settings.TRADEPULSE_BACKUP_DIR.
- `backup_restore` checks the manifest against the migrations this code knows: a backup with a
  migration the code does not have is from a newer schema and refused, nothing touched. Otherwise
  the database is replaced (PostgreSQL: pg_restore --clean in one transaction; SQLite: the backup
  API), `migrate` brings an older schema up to date, the index is rebuilt from the files and the
  restore is audited (in the restored audit trail, after its history).
- `backups_prune` deletes scheduled backups older than TRADEPULSE_BACKUP_KEEP_DAYS, always
  keeping the newest TRADEPULSE_BACKUP_KEEP_MIN; manual backups are kept until deleted.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import sqlite3
import subprocess
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import connection, transaction
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.recorder import MigrationRecorder
from django.utils import timezone

from apps.alerts.services import alert_raise, alert_resolve
from apps.audit.services import audit_delete, audit_record
from tradepulse.celery import app as celery_app
from tradepulse.core import events

from .models import Backup, BackupState
from .serializers import BackupSerializer

log = logging.getLogger(__name__)
RUN_TASK = "ops.backup_run"
FORMAT_VERSION = 1


class BackupError(Exception):
    """A backup or restore could not be done; the message says why (no passwords in it)."""


def backup_dir() -> Path:
    path = Path(settings.TRADEPULSE_BACKUP_DIR)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _engine() -> str:
    vendor = connection.vendor
    if vendor not in ("postgresql", "sqlite"):
        raise BackupError(f"backups support PostgreSQL and SQLite, not {vendor}")
    return vendor


def _applied_migrations() -> list[str]:
    return sorted(f"{app}.{name}" for app, name in MigrationRecorder(connection).applied_migrations())


def _known_migrations() -> set[str]:
    return {f"{app}.{name}" for app, name in MigrationLoader(None, ignore_no_migrations=True).disk_migrations}


def _publish(backup: Backup) -> None:
    events.publish("ops.backup.updated", backup_data(backup), ops=True)


def backup_data(backup: Backup) -> dict:
    return dict(BackupSerializer(backup).data)


def backup_create(*, user=None, kind: str = "manual", enqueue: bool = True, reason: str = "") -> Backup:
    """A queued backup row (named by its time), queued for a worker after commit."""
    stamp = timezone.now().strftime("%Y%m%dT%H%M%S%fZ")
    with transaction.atomic():
        backup = Backup.objects.create(name=f"tradepulse-{stamp}-{kind}", kind=kind, requested_by=user)
        audit_record("ops.backup.requested", target=backup, reason=reason or f"{kind} backup", actor=user)
        _publish(backup)
        if enqueue:
            transaction.on_commit(lambda: celery_app.tasks[RUN_TASK].delay(backup.pk))
    return backup


def backup_run(*, backup_id: int) -> Backup:
    """Take the backup of row `backup_id` (queued → running → succeeded | failed). Claims the row
    with a conditional UPDATE: a second delivery of the task does nothing."""
    if not Backup.objects.filter(pk=backup_id, state=BackupState.QUEUED).update(
            state=BackupState.RUNNING, started_at=timezone.now()):
        return Backup.objects.get(pk=backup_id)
    backup = Backup.objects.get(pk=backup_id)
    _publish(backup)
    try:
        engine = _engine()
        folder = backup_dir()
        data_file = folder / f"{backup.name}.{'dump' if engine == 'postgresql' else 'sqlite3'}"
        migrations = _applied_migrations()
        if engine == "postgresql":
            _pg("pg_dump", "--format=custom", "--no-owner", f"--file={data_file}")
        else:
            _sqlite_copy(Path(connection.settings_dict["NAME"]), data_file)
        digest = _sha256(data_file)
        manifest = {"format": FORMAT_VERSION, "name": backup.name, "engine": engine, "file": data_file.name,
                    "created_at": timezone.now().isoformat(), "sha256": digest, "size_bytes": data_file.stat().st_size,
                    "migrations": migrations, "kind": backup.kind}
        (folder / f"{backup.name}.json").write_text(json.dumps(manifest, indent=1))
    except (BackupError, OSError) as exc:
        backup.state, backup.error, backup.finished_at = BackupState.FAILED, str(exc)[:2000], timezone.now()
        backup.save(update_fields=["state", "error", "finished_at", "updated_at"])
        audit_record("ops.backup.failed", target=backup, reason=backup.error)
        _alert_failed(backup)
        _publish(backup)
        return backup
    backup.engine, backup.size_bytes, backup.sha256, backup.migrations = engine, manifest["size_bytes"], digest, migrations
    backup.state, backup.finished_at, backup.error = BackupState.SUCCEEDED, timezone.now(), ""
    backup.save()
    audit_record("ops.backup.succeeded", target=backup, reason=f"{backup.size_bytes:,} bytes",
                 metadata={"sha256": digest, "engine": engine})
    alert_resolve(source="ops", key="backup-failed", reason=f"Backup {backup.name} succeeded.")
    _publish(backup)
    return backup


def _alert_failed(backup: Backup) -> None:
    alert_raise(severity="error", source="ops", title="Backup failed", message=backup.error, key="backup-failed")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _pg(program: str, *args: str) -> None:
    """Run pg_dump/pg_restore against the configured database (password through the environment)."""
    db = connection.settings_dict
    env = {**os.environ, "PGPASSWORD": db.get("PASSWORD") or ""}
    command = [program, f"--host={db.get('HOST') or 'localhost'}", f"--port={db.get('PORT') or 5432}",
               f"--username={db.get('USER') or 'postgres'}", *args]
    command.append(f"--dbname={db['NAME']}")
    try:
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=3600, check=False)
    except FileNotFoundError:
        raise BackupError(f"{program} is not installed (the PostgreSQL client tools are needed)") from None
    if result.returncode != 0:
        raise BackupError(f"{program} failed: {result.stderr.strip()[-1500:]}")


def _sqlite_copy(source: Path, target: Path) -> None:
    """Copy a live SQLite database consistently (the online backup API, page by page)."""
    src, dst = sqlite3.connect(source), sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()


def read_manifest(backup: Backup) -> dict:
    path = backup_dir() / f"{backup.name}.json"
    if not path.exists():
        raise BackupError(f"the manifest {path.name} is missing")
    return json.loads(path.read_text())


def backup_restore(*, backup: Backup, user=None, reason: str = "") -> dict:
    """Replace the database with `backup`. Refuses (ValidationError, nothing touched) a failed
    backup, a missing or altered file, another database engine, or a newer schema. Returns
    {"restored": name, "migrated": [...], "backups_indexed": n}."""
    if not reason.strip():
        raise ValidationError("Say why you restore: the restore is recorded with its reason.")
    if backup.state != BackupState.SUCCEEDED:
        raise ValidationError(f"Backup {backup.name} is {backup.state}; only a succeeded backup can be restored.")
    try:
        manifest = read_manifest(backup)
        engine = _engine()
    except BackupError as exc:
        raise ValidationError(str(exc)) from None
    data_file = backup_dir() / manifest["file"]
    if not data_file.exists() or _sha256(data_file) != manifest["sha256"]:
        raise ValidationError(f"{data_file.name} is missing or does not match its recorded checksum.")
    if manifest["engine"] != engine:
        raise ValidationError(f"{backup.name} is a {manifest['engine']} backup; this database is {engine}.")
    unknown = sorted(set(manifest["migrations"]) - _known_migrations())
    if unknown:
        raise ValidationError(f"{backup.name} comes from a newer schema than this code ({len(unknown)} migration(s) "
                              f"it does not know, e.g. {', '.join(unknown[:3])}): upgrade TradePulse first.")
    before = _applied_migrations()
    actor = user.get_username() if user is not None else "system"
    connection.close()  # pg_restore drops and recreates our tables: no open transaction may hold them
    try:
        if engine == "postgresql":
            _pg("pg_restore", "--clean", "--if-exists", "--no-owner", "--single-transaction", str(data_file))
        else:
            _sqlite_copy(data_file, Path(connection.settings_dict["NAME"]))
    except BackupError as exc:
        raise ValidationError(str(exc)) from None
    call_command("migrate", interactive=False, verbosity=0)  # an older schema catches up
    migrated = sorted(set(_applied_migrations()) - set(manifest["migrations"]))
    indexed = backups_scan()
    restored = Backup.objects.get(name=backup.name)
    Backup.objects.filter(pk=restored.pk).update(restored_at=timezone.now())
    audit_record("ops.backup.restored", target=restored, reason=reason, actor=user,
                 metadata={"migrated": migrated, "schema_before": len(before), "by": actor})
    return {"restored": backup.name, "migrated": migrated, "backups_indexed": indexed}


def backups_scan() -> int:
    """Make the Backup rows match the manifests in the backup directory (after a restore, or when
    files were copied in or deleted by hand). Returns how many backups are indexed."""
    names = set()
    for path in sorted(backup_dir().glob("*.json")):
        try:
            manifest = json.loads(path.read_text())
        except ValueError:
            continue
        names.add(manifest["name"])
        Backup.objects.update_or_create(name=manifest["name"], defaults={
            "kind": manifest.get("kind", "manual"), "engine": manifest["engine"], "state": BackupState.SUCCEEDED,
            "size_bytes": manifest["size_bytes"], "sha256": manifest["sha256"], "migrations": manifest["migrations"],
            "finished_at": manifest["created_at"], "error": ""})
    Backup.objects.filter(state=BackupState.SUCCEEDED).exclude(name__in=names).delete()
    return len(names)


def backup_delete(*, backup: Backup, user=None, reason: str = "") -> None:
    for suffix in (".json", ".dump", ".sqlite3"):
        (backup_dir() / f"{backup.name}{suffix}").unlink(missing_ok=True)
    audit_delete(backup, "ops.backup.deleted", reason=reason or "deleted", actor=user)
    backup.delete()


def backups_prune(*, now=None) -> list[str]:
    """Delete scheduled backups older than the retention, keeping the newest KEEP_MIN of them."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=settings.TRADEPULSE_BACKUP_KEEP_DAYS)
    scheduled = list(Backup.objects.filter(kind="scheduled", state=BackupState.SUCCEEDED).order_by("-created_at"))
    doomed = [b for b in scheduled[settings.TRADEPULSE_BACKUP_KEEP_MIN:] if b.created_at < cutoff]
    for backup in doomed:
        backup_delete(backup=backup, reason=f"retention: older than {settings.TRADEPULSE_BACKUP_KEEP_DAYS} days")
    return [b.name for b in doomed]
