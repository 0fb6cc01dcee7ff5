"""The one helper every state change goes through to be audited."""
from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models

import json

from tradepulse.core import context
from tradepulse.core.crypto import EncryptedTextField

from .models import AuditEvent

log = logging.getLogger(__name__)
SECRET_FIELD_HINTS = ("secret", "password", "api_key", "apikey", "token", "passphrase", "private_key")
SECRET_FIELD_NAMES = {"key", "digest", "salt", "bin_key"}  # e.g. a TOTP device's key, a token's hash


def _clean(value: Any) -> Any:
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder, default=str))


def _redact(changes: dict) -> dict:
    return {
        key: ["[REDACTED]", "[REDACTED]"] if any(h in key.lower() for h in SECRET_FIELD_HINTS) else value
        for key, value in changes.items()
    }


def diff(before: dict, after: dict, fields: Iterable[str] | None = None) -> dict:
    """{"field": [before, after]} for the fields whose value changed."""
    keys = fields if fields is not None else sorted(set(before) | set(after))
    return {k: [before.get(k), after.get(k)] for k in keys if before.get(k) != after.get(k)}


def snapshot(obj: models.Model, fields: Iterable[str]) -> dict:
    return {f: getattr(obj, f) for f in fields}


def snapshot_of(obj: models.Model) -> dict:
    """Every stored field of `obj` ({"field": value}, related objects by id), for the audit
    event of its deletion: what was deleted can be read, and rebuilt, from the log. Secrets
    (encrypted fields, secret-looking names) are "[REDACTED]"; binary fields are left out."""
    out = {}
    for field in obj._meta.concrete_fields:
        if isinstance(field, models.BinaryField):
            continue
        name = field.attname
        secret = (isinstance(field, EncryptedTextField) or name.lower() in SECRET_FIELD_NAMES
                  or any(h in name.lower() for h in SECRET_FIELD_HINTS))
        out[name] = "[REDACTED]" if secret else getattr(obj, name)
    return _clean(out)


def audit_delete(obj: models.Model, action: str, *, reason: str = "", metadata: dict | None = None,
                 actor=None) -> AuditEvent:
    """Audit the deletion of `obj` (call just before deleting it): the event carries a snapshot
    of the object's fields under metadata["snapshot"]."""
    return audit_record(action, target=obj, reason=reason, actor=actor,
                        metadata={**(metadata or {}), "snapshot": snapshot_of(obj)})


def audit_record(
    action: str,
    *,
    target: models.Model | None = None,
    changes: dict | None = None,
    reason: str = "",
    metadata: dict | None = None,
    actor=None,
) -> AuditEvent:
    """Write one audit event.

    The actor, request id, IP and user agent come from the current context (request middleware,
    Celery task headers, or a command's `acting(...)` block) unless `actor` (a user) is given.
    Values of fields whose names look secret are replaced with "[REDACTED]".
    """
    ctx = context.current()
    actor_id = actor.pk if actor is not None else ctx.user_id
    label = ctx.actor_label or "system:unknown"
    via = ""
    if actor is not None:
        label = actor.get_username()
    elif actor_id is not None and ":" in label:
        # A worker or command ("system:…", "command:…"; usernames have no colon) acting on behalf
        # of a person: the person is the actor, the worker or command the means.
        via, label = label, _username(actor_id) or label
    event = AuditEvent(
        actor_id=actor_id,
        actor_label=label[:150],
        via=via[:100],
        action=action,
        reason=reason or "",
        changes=_clean(_redact(changes or {})),
        metadata=_clean(metadata or {}),
        request_id=ctx.request_id,
        client_request_id=ctx.client_request_id,
        ip=ctx.ip,
        user_agent=(ctx.user_agent or "")[:300],
    )
    if target is not None:
        event.target_type = ContentType.objects.get_for_model(target)
        event.target_id = str(target.pk)
        event.target_repr = str(target)[:300]
        event.owner_id = getattr(target, "owner_id", None)
    event.save()
    log.info("audit %s %s %s", label, action, event.target_repr)
    return event


def _username(user_id: int) -> str | None:
    from django.contrib.auth import get_user_model

    return get_user_model().objects.filter(pk=user_id).values_list("username", flat=True).first()
