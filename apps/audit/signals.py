"""Audit events for authentication and for generic admin edits (LogEntry)."""
from __future__ import annotations

from contextvars import ContextVar

from django.contrib.admin.models import DELETION, LogEntry
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db.models.signals import post_save
from django.dispatch import receiver

from tradepulse.core import context

from .services import audit_record, snapshot_of

# Set while apps.audit.admin.delete_selected has already audited each object it deletes.
BULK_DELETE_AUDITED: ContextVar[bool] = ContextVar("bulk_delete_audited", default=False)


@receiver(user_logged_in)
def _logged_in(sender, request, user, **_):
    with context.acting(actor_label=user.get_username(), user_id=user.pk):
        audit_record("accounts.user.login", target=user, actor=user)


@receiver(user_logged_out)
def _logged_out(sender, request, user, **_):
    if user is not None:
        audit_record("accounts.user.logout", target=user, actor=user)


@receiver(user_login_failed)
def _login_failed(sender, credentials, request=None, **_):
    # credentials are already cleansed by Django (password masked); keep only the username.
    username = str(credentials.get("username", ""))[:150]
    with context.acting(actor_label=username or "anonymous"):
        audit_record("accounts.user.login_failed", metadata={"username": username})


_ACTION_FLAGS = {1: "created", 2: "changed", 3: "deleted"}


def admin_deletion_event(obj, *, user) -> None:
    """The audit event of an object deleted in the admin, with a snapshot of it (written
    before the delete: the admin logs deletions first)."""
    meta = obj._meta
    audit_record(f"admin.{meta.app_label}.{meta.model_name}.deleted", target=obj, actor=user,
                 metadata={"object_id": str(obj.pk), "object_repr": str(obj)[:200], "snapshot": snapshot_of(obj)})


@receiver(post_save, sender=LogEntry)
def _admin_change(sender, instance: LogEntry, created: bool, **_):
    # One object's admin log entry is saved (and seen here); several at once are bulk-created
    # without signals, so the admin's bulk delete is audited by apps.audit.admin.delete_selected.
    if not created:
        return
    verb = _ACTION_FLAGS.get(instance.action_flag, "changed")
    if instance.action_flag == DELETION:
        obj = instance.get_edited_object() if instance.content_type_id else None
        if obj is not None and not BULK_DELETE_AUDITED.get():
            admin_deletion_event(obj, user=instance.user)
            return
        if BULK_DELETE_AUDITED.get():
            return
    model = instance.content_type.model if instance.content_type_id else "object"
    app = instance.content_type.app_label if instance.content_type_id else "admin"
    audit_record(
        f"admin.{app}.{model}.{verb}",
        metadata={
            "object_id": instance.object_id,
            "object_repr": instance.object_repr,
            "change_message": instance.get_change_message(),
        },
        actor=instance.user,
    )


# --- Append-only in embedded SQLite -----------------------------------------------------------
# PostgreSQL refuses DELETE by trigger and the test runner resets tables with TRUNCATE, which
# row triggers do not see. SQLite has no TRUNCATE: its flush is DELETE. Its delete trigger (migration
# 0003) therefore asks this function, registered on every SQLite connection, whether deletes are
# allowed; it answers yes only while the test suite resets tables. Elsewhere (the sqlite3 shell
# included, where the function does not exist) the DELETE fails.
from django.db.backends.signals import connection_created  # noqa: E402


def _deletes_allowed() -> int:
    from django.conf import settings

    return 1 if settings.TESTING and ALLOW_DELETES_IN_TESTS else 0


ALLOW_DELETES_IN_TESTS = True  # a test of the guard turns it off


@receiver(connection_created)
def _register_sqlite_guard(sender, connection, **_):
    if connection.vendor == "sqlite":
        connection.connection.create_function("tradepulse_audit_deletes_allowed", 0, _deletes_allowed)
