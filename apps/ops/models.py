"""Backups of the whole database: one row per file under settings.TRADEPULSE_BACKUP_DIR.

The files are the truth and the rows an index (`backups_scan` rebuilds it: a restore brings
back the table as it was when the backup was taken). Each file has a JSON manifest beside it
naming the database engine and every migration applied when it was taken, so a restore can
refuse a backup from a newer schema than the code knows.
"""
from __future__ import annotations

from django.conf import settings
from django.db import models

from tradepulse.core.models import TimeStampedModel


class BackupState(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class Backup(TimeStampedModel):
    name = models.CharField(max_length=200, unique=True, help_text="File name under the backup directory.")
    kind = models.CharField(max_length=10, default="manual", help_text="manual or scheduled")
    engine = models.CharField(max_length=20, blank=True, help_text="postgresql or sqlite")
    state = models.CharField(max_length=10, choices=BackupState.choices, default=BackupState.QUEUED, db_index=True)
    size_bytes = models.BigIntegerField(null=True, blank=True)
    sha256 = models.CharField(max_length=64, blank=True)
    migrations = models.JSONField(default=list, blank=True, help_text='Applied migrations: ["app.0001_initial", …]')
    error = models.TextField(blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="+")
    restored_at = models.DateTimeField(null=True, blank=True, help_text="When it was last restored.")

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.name
