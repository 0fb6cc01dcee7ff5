"""Users, API tokens and per-user preferences."""
from __future__ import annotations

import zoneinfo

from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.db import models
from knox.models import AbstractAuthToken


def validate_timezone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(f"{value!r} is not a known IANA time zone (e.g. Europe/London)")


class User(AbstractUser):
    """A person using TradePulse. Roles are groups (see roles.py); objects are shared per object."""

    timezone = models.CharField(
        max_length=64, default="UTC", validators=[validate_timezone],
        help_text="Times are stored in UTC and shown in this zone.",
    )
    language = models.CharField(max_length=8, default="en")

    class Meta(AbstractUser.Meta):
        swappable = "AUTH_USER_MODEL"
        permissions = [
            ("view_all_objects", "Can see every user's objects (operators)"),
        ]

    @property
    def role_names(self) -> list[str]:
        return sorted(g.name for g in self.groups.all())


class ApiToken(AbstractAuthToken):
    """A personal API token. Only a hash is stored; the token is shown once, at creation."""

    name = models.CharField(max_length=100, help_text="What this token is for, e.g. 'reporting script'.")
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created"]

    def __str__(self) -> str:
        return f"{self.name} ({self.token_key}…)"


class QuotaKey(models.TextChoices):
    """The limits on expensive work. Concurrency counts jobs queued or running; the others bound
    one request."""

    DOWNLOADS_CONCURRENT = "downloads_concurrent", "Downloads queued or running at once"
    BACKTESTS_CONCURRENT = "backtests_concurrent", "Backtests queued or running at once"
    TRAINING_CONCURRENT = "training_concurrent", "Training runs queued or running at once"
    DOWNLOAD_CANDLES = "download_candles", "Candles in one download"
    TRAINING_TRIALS = "training_trials", "Trials per study of a training run"
    TRAINING_WORKERS = "training_workers", "Workers of one training run"
    TRAINING_FOLDS = "training_folds", "Walk-forward folds of one training run"


class Quota(models.Model):
    """One limit for a role (group) or for one user. A user's own limit beats their roles'; with
    several roles the most generous role's limit applies. Edited by operators with a reason
    (apps.accounts.quotas.quota_set); the defaults come from a data migration."""

    key = models.CharField(max_length=32, choices=QuotaKey.choices)
    role = models.ForeignKey("auth.Group", null=True, blank=True, on_delete=models.CASCADE, related_name="quotas",
                             help_text="The role this limit is for (leave empty for a user's own limit).")
    user = models.ForeignKey("accounts.User", null=True, blank=True, on_delete=models.CASCADE, related_name="quotas",
                             help_text="The user this limit is for; it overrides the user's roles' limits.")
    value = models.PositiveBigIntegerField(help_text="The limit: a count (jobs, trials, workers, folds, candles).")
    reason = models.TextField(help_text="Why the limit is this value (the last change's reason).")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["key", "role__name", "user__username"]
        constraints = [
            models.CheckConstraint(condition=models.Q(role__isnull=True) ^ models.Q(user__isnull=True),
                                   name="accounts_quota_role_xor_user"),
            models.UniqueConstraint(fields=["key", "role"], condition=models.Q(role__isnull=False),
                                    name="accounts_quota_unique_role"),
            models.UniqueConstraint(fields=["key", "user"], condition=models.Q(user__isnull=False),
                                    name="accounts_quota_unique_user"),
        ]

    def __str__(self) -> str:
        return f"{self.get_key_display()}: {self.value:,} for {self.holder}"

    @property
    def holder(self) -> str:
        return f"role {self.role.name}" if self.role_id else f"user {self.user.username}"

    def clean(self):
        if (self.role_id is None) == (self.user_id is None):
            raise ValidationError("A limit is for exactly one role or one user.")
