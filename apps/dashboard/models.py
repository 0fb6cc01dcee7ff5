"""What the system health page remembers: each scheduled readiness check, and server errors.

HealthSample: one run of the /health/ready checks by the beat task (every 30 s), so each
component has a recent history and "last beat" is known. RequestError: a request that ended in
a 5xx, with our request id so it can be found in the logs and the audit trail. Both are pruned
(health.py) so they stay small.
"""
from __future__ import annotations

from django.db import models


class HealthSample(models.Model):
    checked_at = models.DateTimeField(db_index=True)
    ok = models.BooleanField(help_text="Every required component answered.")
    components = models.JSONField(default=dict, help_text="name -> {status, latency_ms, required, error, …}")

    class Meta:
        ordering = ["-checked_at"]

    def __str__(self) -> str:
        return f"{self.checked_at:%Y-%m-%d %H:%M:%S} {'ok' if self.ok else 'down'}"


class RequestError(models.Model):
    occurred_at = models.DateTimeField(db_index=True)
    request_id = models.CharField(max_length=64, db_index=True)
    method = models.CharField(max_length=10)
    path = models.CharField(max_length=300, help_text="Without the query string (it may carry tokens).")
    status = models.PositiveSmallIntegerField()
    error = models.CharField(max_length=300, blank=True, help_text="Exception class and message, secrets masked.")
    user = models.CharField(max_length=150, blank=True)

    class Meta:
        ordering = ["-occurred_at", "-id"]

    def __str__(self) -> str:
        return f"{self.status} {self.method} {self.path} ({self.request_id})"
