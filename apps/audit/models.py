"""Append-only audit events: who did what to which object, why, and on behalf of which request."""
from __future__ import annotations

from django.conf import settings
from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.db import models


class AppendOnlyError(Exception):
    """Audit events are never changed or deleted once written."""


class AuditEventQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AppendOnlyError("audit events are append-only: update refused")

    def delete(self):
        raise AppendOnlyError("audit events are append-only: delete refused")


class AuditEvent(models.Model):
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    # No database constraint: deleting a user must not rewrite history (rows are immutable).
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.DO_NOTHING,
        db_constraint=False, related_name="+",
    )
    actor_label = models.CharField(max_length=150, db_index=True,
                                   help_text="Username, or system:<component> for workers, beat and commands.")
    via = models.CharField(max_length=100, blank=True,
                           help_text="The component that carried it out, when not the person directly (e.g. a worker task).")
    action = models.CharField(max_length=100, db_index=True, help_text="<app>.<entity>.<verb>, e.g. marketdata.download.created")
    target_type = models.ForeignKey(ContentType, null=True, blank=True, on_delete=models.DO_NOTHING,
                                    db_constraint=False, related_name="+")
    target_id = models.CharField(max_length=64, blank=True, db_index=True)
    target = GenericForeignKey("target_type", "target_id")
    target_repr = models.CharField(max_length=300, blank=True, help_text="What the target was called when this happened.")
    owner_id = models.BigIntegerField(null=True, blank=True, db_index=True,
                                      help_text="Owner of the target at the time, so owners see events about their objects.")
    changes = models.JSONField(default=dict, blank=True, help_text='{"field": [before, after]}')
    reason = models.TextField(blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    request_id = models.CharField(max_length=64, blank=True, db_index=True)
    client_request_id = models.CharField(max_length=64, blank=True, db_index=True,
                                         help_text="The X-Request-ID the caller sent, if any (not ours).")
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["target_type", "target_id"])]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.actor_label} {self.action} {self.target_repr}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise AppendOnlyError("audit events are append-only: update refused")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError("audit events are append-only: delete refused")
