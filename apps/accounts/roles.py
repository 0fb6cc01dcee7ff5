"""Roles are groups: Admin, Operator, Trader, Viewer — and the model permissions each holds.

Objects stay private to their owner whatever the role (see permissions.visible_to); a role's
model permissions say what kinds of thing a user may do at all. Operators and Admins also hold
`accounts.view_all_objects`, which lifts the per-object narrowing.
"""
from __future__ import annotations

from django.contrib.auth.models import Group, Permission
from django.db.models import Q

ADMIN, OPERATOR, TRADER, VIEWER = "Admin", "Operator", "Trader", "Viewer"
ROLES = (ADMIN, OPERATOR, TRADER, VIEWER)

# The platform's own apps. Third-party apps' permissions go to Admins only.
PLATFORM_APPS = (
    "accounts", "audit", "marketdata", "strategies", "backtests", "training",
    "graduation", "risk", "trading", "alerts",
)
# Apps whose objects a trader creates and owns.
TRADER_WRITE_APPS = ("marketdata", "strategies", "backtests", "training", "graduation", "risk", "trading", "alerts")
# Models a trader may only read even inside those apps (shared reference data, decisions,
# evidence that is measured, never typed in).
TRADER_READ_ONLY_MODELS = {"exchange", "market", "candle", "retentionpolicy", "graduationpolicy", "configevidence",
                           "graduationdecision"}
# Extra custom permissions by role, as "app_label.codename"; missing ones (apps not yet
# migrated) are skipped and picked up on the next migrate.
EXTRA = {
    OPERATOR: {"accounts.view_all_objects", "accounts.view_user", "django_celery_beat.view_periodictask",
               "django_celery_beat.change_periodictask", "accounts.view_quota", "accounts.add_quota",
               "accounts.change_quota", "accounts.delete_quota"},
    TRADER: {"accounts.view_user"},
    VIEWER: set(),
}


def _perms(query: Q) -> set[int]:
    return set(Permission.objects.filter(query).values_list("pk", flat=True))


def role_permission_ids(role: str) -> set[int]:
    platform = Q(content_type__app_label__in=PLATFORM_APPS)
    if role == ADMIN:
        return _perms(Q())
    if role == OPERATOR:
        ids = _perms(platform & ~Q(content_type__app_label="accounts"))
    elif role == TRADER:
        writable = Q(content_type__app_label__in=TRADER_WRITE_APPS) & ~Q(content_type__model__in=TRADER_READ_ONLY_MODELS)
        ids = _perms(platform & Q(codename__startswith="view_") & ~Q(content_type__app_label="accounts"))
        ids |= _perms(writable & Q(codename__regex=r"^(add|change|delete)_"))
        ids |= _perms(Q(content_type__app_label="accounts", content_type__model="apitoken"))
    elif role == VIEWER:
        ids = _perms(platform & Q(codename__startswith="view_") & ~Q(content_type__app_label="accounts"))
    else:
        raise ValueError(f"unknown role {role!r}; roles are {', '.join(ROLES)}")
    for full in EXTRA.get(role, ()):
        app_label, codename = full.split(".")
        ids |= _perms(Q(content_type__app_label=app_label, codename=codename))
    return ids


def sync_roles(**_kwargs) -> None:
    """Create the role groups and set their permissions exactly (idempotent; runs after migrate)."""
    for role in ROLES:
        group, _ = Group.objects.get_or_create(name=role)
        group.permissions.set(role_permission_ids(role))
