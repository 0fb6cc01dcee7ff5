"""Alerts, the channels people choose to hear about them on, and each delivery attempt.

An Alert is one open problem, not one occurrence: the same `source` + `key` raised again while
the alert is open or acknowledged bumps `count` and `last_seen` (a partial unique index makes
that hold under concurrent raisers). Who may see an alert follows its target: the people who
may see the target object; an alert with no target (a worker down, a full disk) is a system
alert for operators (apps/alerts/selectors.py).

A Channel belongs to one user: where (email, a webhook, Slack, Discord, Telegram), from which
severity, and quiet hours in the user's time zone. Webhook URLs and bot tokens are encrypted at
rest and never shown back in full. A Delivery is one alert (or a test) to one channel, with its
state, attempts, next attempt time and last error: failed ones are retried with backoff.
"""
from __future__ import annotations

from django.conf import settings
from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.db.models import Q

from tradepulse.core.crypto import EncryptedTextField, mask
from tradepulse.core.models import OwnedModel, TimeStampedModel


class Severity(models.TextChoices):
    INFO = "info", "Info"
    WARNING = "warning", "Warning"
    ERROR = "error", "Error"
    CRITICAL = "critical", "Critical"


SEVERITY_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.ERROR: 2, Severity.CRITICAL: 3}


def severities_from(minimum: str) -> list[str]:
    """The severities at or above `minimum` ("warning" -> warning, error, critical)."""
    return [s for s, rank in SEVERITY_RANK.items() if rank >= SEVERITY_RANK[minimum]]


class AlertState(models.TextChoices):
    OPEN = "open", "Open"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"
    RESOLVED = "resolved", "Resolved"


UNRESOLVED = (AlertState.OPEN, AlertState.ACKNOWLEDGED)


class Alert(models.Model):
    severity = models.CharField(max_length=8, choices=Severity.choices, db_index=True)
    source = models.CharField(max_length=50, db_index=True,
                              help_text="What raised it: an app or component (marketdata, trading, system…).")
    key = models.CharField(max_length=200, help_text="Groups repeats: the same source and key while unresolved "
                                                     "is the same alert.")
    title = models.CharField(max_length=200)
    message = models.TextField(blank=True)
    context = models.JSONField(default=dict, blank=True, help_text="Details as the raiser gave them.")
    target_type = models.ForeignKey(ContentType, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    target_id = models.CharField(max_length=64, blank=True, db_index=True)
    target = GenericForeignKey("target_type", "target_id")
    target_repr = models.CharField(max_length=300, blank=True, help_text="What the target was called when raised.")
    # The target's owner when raised: who hears of it first (the rest follow the target's sharing).
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="+")
    state = models.CharField(max_length=12, choices=AlertState.choices, default=AlertState.OPEN, db_index=True)
    first_seen = models.DateTimeField(db_index=True)
    last_seen = models.DateTimeField(db_index=True)
    count = models.PositiveIntegerField(default=1, help_text="How many times it was raised while unresolved.")
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                        related_name="+")
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="+", help_text="Empty when it resolved itself (cause gone).")
    resolution = models.CharField(max_length=500, blank=True, help_text="Why it was resolved.")

    class Meta:
        ordering = ["-last_seen", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["source", "key"], condition=~Q(state="resolved"),
                                    name="alerts_one_unresolved_per_key"),
        ]
        indexes = [models.Index(fields=["target_type", "target_id"]), models.Index(fields=["state", "severity"])]

    def __str__(self) -> str:
        return f"[{self.severity}] {self.title}"

    @property
    def is_system(self) -> bool:
        return self.target_type_id is None and self.owner_id is None


class ChannelKind(models.TextChoices):
    EMAIL = "email", "Email"
    WEBHOOK = "webhook", "Webhook (generic JSON)"
    SLACK = "slack", "Slack"
    DISCORD = "discord", "Discord"
    TELEGRAM = "telegram", "Telegram"


URL_KINDS = (ChannelKind.WEBHOOK, ChannelKind.SLACK, ChannelKind.DISCORD)


class Channel(OwnedModel):
    """Where one user hears of alerts they may see, from `min_severity` up.

    Quiet hours [quiet_start, quiet_end) in the owner's time zone hold non-critical alerts until
    they end (a window may span midnight: 22:00–07:00). Secrets: `url` (webhooks, Slack, Discord)
    and `bot_token` (Telegram) are encrypted at rest and shown only masked (`secret_hint`)."""

    SECRET_FIELDS = ("url", "bot_token")

    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=10, choices=ChannelKind.choices)
    enabled = models.BooleanField(default=True)
    min_severity = models.CharField(max_length=8, choices=Severity.choices, default=Severity.WARNING,
                                    help_text="Deliver alerts of this severity and above.")
    email = models.EmailField(blank=True, help_text="Email channels: the address (blank: the account's address).")
    url = EncryptedTextField(blank=True, help_text="Webhook, Slack or Discord URL (secret: encrypted, never shown).")
    bot_token = EncryptedTextField(blank=True, help_text="Telegram bot token (secret: encrypted, never shown).")
    chat_id = models.CharField(max_length=64, blank=True, help_text="Telegram chat id.")
    quiet_start = models.TimeField(null=True, blank=True, help_text="Quiet hours start (your time zone).")
    quiet_end = models.TimeField(null=True, blank=True, help_text="Quiet hours end (your time zone).")

    class Meta:
        ordering = ["owner_id", "name", "id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_kind_display()})"

    @property
    def secret_hint(self) -> str:
        """What the owner may see of the secret: the host and the last characters."""
        if self.kind in URL_KINDS and self.url:
            from urllib.parse import urlsplit

            host = urlsplit(self.url).hostname or ""
            return f"{host}/{mask(self.url)}" if host else mask(self.url)
        if self.kind == ChannelKind.TELEGRAM and self.bot_token:
            return f"bot {mask(self.bot_token)}"
        return ""


class DeliveryState(models.TextChoices):
    PENDING = "pending", "Pending"  # due at next_attempt_at (first try, retry, or after quiet hours)
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"  # gave up after the last attempt
    SKIPPED = "skipped", "Skipped"  # no longer worth sending (resolved during quiet hours, channel off)


class Delivery(TimeStampedModel):
    """One alert (or a test message, alert empty) to one channel. Visible with its channel."""

    OWNED_THROUGH = "channel"

    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="deliveries")
    alert = models.ForeignKey(Alert, null=True, blank=True, on_delete=models.CASCADE, related_name="deliveries")
    is_test = models.BooleanField(default=False)
    state = models.CharField(max_length=8, choices=DeliveryState.choices, default=DeliveryState.PENDING,
                             db_index=True)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True, db_index=True)
    last_error = models.CharField(max_length=500, blank=True, help_text="Why the last attempt failed (no secrets).")
    note = models.CharField(max_length=300, blank=True, help_text="Why it waits or was skipped (quiet hours…).")
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "deliveries"

    def __str__(self) -> str:
        what = "test" if self.is_test else f"alert {self.alert_id}"
        return f"{what} → {self.channel} ({self.state})"
