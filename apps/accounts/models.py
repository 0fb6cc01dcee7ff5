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
