"""Alerts: the one `alert_raise` every app calls, acknowledgement, resolution, channels, delivery.

Interface (stable; other apps call it):

    alert_raise(severity="warning", source="trading", title="...", message="...",
                context={...}, target=obj, key="stale-data:deployment-7") -> Alert | None
    alert_resolve(source="trading", key="stale-data:deployment-7", reason="...")

`severity` is info | warning | error | critical; `key` groups identical alerts: a repeat while
the alert is unresolved bumps `count` and `last_seen` instead of adding a row (no key: the
title and target are the key). A repeat at a higher severity escalates the alert, re-opens it
if it was acknowledged and notifies again; other repeats notify nobody. `alert_resolve` closes
an unresolved alert whose cause went away (a worker back up). Raising never breaks the caller:
a failure inside the alert system is logged and `None` returned.

Delivery: every user who may see an alert hears of it on the dashboard (a live event); each of
their enabled channels whose minimum severity it reaches gets a Delivery row, sent at once, or
held until the channel's quiet hours end (critical alerts ignore quiet hours). A failed attempt
is retried with exponential backoff (settings TRADEPULSE_ALERT_DELIVERY_*) by the
`alerts.deliver_due` beat task, until the last attempt fails or the alert is resolved.
"""
from __future__ import annotations

import hashlib
import logging
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, models, transaction
from django.utils import timezone

from apps.audit.services import audit_delete, audit_record
from tradepulse.celery import app as celery_app
from tradepulse.core import context as actor_context
from tradepulse.core import events
from tradepulse.core.permissions import grant_owner

from . import senders
from .models import (SEVERITY_RANK, UNRESOLVED, URL_KINDS, Alert, AlertState, Channel, ChannelKind, Delivery,
                     DeliveryState, Severity)
from .selectors import alert_may_act, alerts_visible_to
from .serializers import AlertSerializer, DeliverySerializer

log = logging.getLogger("tradepulse.alerts")
LEVELS = {"info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR, "critical": logging.CRITICAL}
DELIVER_TASK = "alerts.deliver"
STUCK_SENDING = timedelta(minutes=5)  # a "sending" row this old lost its worker: due again


# --- raising and resolving ---------------------------------------------------------------------------

def _default_key(title: str, target) -> str:
    ident = f"{title}|{target._meta.label_lower}:{target.pk}" if target is not None else title
    return "auto:" + hashlib.sha1(ident.encode()).hexdigest()[:32]


def _audience(alert: Alert) -> list[int]:
    """Users (besides operators) who may see the alert: the target's owner and shares, or its addressee."""
    users = [alert.owner_id] if alert.owner_id else []
    target = alert.target if alert.target_type_id else None
    if target is not None:
        users += events.audience(target)
    return list(dict.fromkeys(u for u in users if u))


def _publish(alert: Alert, event: str) -> None:
    events.publish(f"alerts.alert.{event}", AlertSerializer(alert).data, users=_audience(alert), ops=True)


def alert_raise(*, severity: str, source: str, title: str, message: str = "", context: dict | None = None,
                target=None, key: str = "", owner=None) -> Alert | None:
    """Raise (or repeat) an alert; returns the stored Alert, or None if the alert system failed.

    `target`: the object it is about (decides who sees it); `owner`: a user it is addressed to
    when there is no target (else the target's owner). No target and no owner: a system alert,
    for operators. Text is cut to the columns' sizes; `context` must be JSON-serialisable.
    """
    if severity not in SEVERITY_RANK:
        raise ValueError(f"unknown alert severity {severity!r}; expected one of {', '.join(Severity.values)}")
    log.log(LEVELS[severity], "alert %s: %s %s", source, title, message[:300],
            extra={"alert_source": source, "alert_key": key})
    try:
        with transaction.atomic():
            return _raise(severity=severity, source=source[:50], title=title[:200], message=message,
                          context=events._jsonable(context or {}), target=target, key=(key or _default_key(title, target))[:200],
                          owner=owner)
    except Exception:  # noqa: BLE001 - an alert about a failure must never become a second failure
        log.exception("could not store alert %s/%s", source, key)
        return None


def _raise(*, severity, source, title, message, context, target, key, owner) -> Alert:
    now = timezone.now()
    existing = Alert.objects.select_for_update().filter(source=source, key=key, state__in=UNRESOLVED).first()
    if existing is None:
        alert = Alert(severity=severity, source=source, key=key, title=title, message=message, context=context,
                      first_seen=now, last_seen=now)
        if target is not None:
            alert.target_type = ContentType.objects.get_for_model(target)
            alert.target_id = str(target.pk)
            alert.target_repr = str(target)[:300]
            alert.owner_id = getattr(target, "owner_id", None)
        elif owner is not None:
            alert.owner = owner
        try:
            with transaction.atomic():
                alert.save()
        except IntegrityError:  # raised at the same instant elsewhere: it is a repeat of that one
            return _raise(severity=severity, source=source, title=title, message=message, context=context,
                          target=target, key=key, owner=owner)
        audit_record("alerts.alert.raised", target=alert, reason=title,
                     metadata={"severity": severity, "source": source, "key": key})
        _publish(alert, "raised")
        deliveries_create(alert=alert)
        return alert
    escalated = SEVERITY_RANK[severity] > SEVERITY_RANK[existing.severity]
    before = {"severity": existing.severity, "state": existing.state}
    existing.count += 1
    existing.last_seen, existing.message, existing.context, existing.title = now, message, context, title
    if escalated:
        existing.severity = severity
        existing.state, existing.acknowledged_at, existing.acknowledged_by = AlertState.OPEN, None, None
    existing.save()
    if escalated:
        audit_record("alerts.alert.escalated", target=existing, reason=title,
                     changes={k: [v, getattr(existing, k)] for k, v in before.items()})
        _publish(existing, "raised")
        deliveries_create(alert=existing)
    else:  # a repeat: the count moves on screens, nobody is notified again
        _publish(existing, "updated")
    return existing


def alert_resolve(*, source: str, key: str, reason: str = "") -> Alert | None:
    """Resolve the unresolved alert `source`/`key` because its cause went away (no person: it
    resolved itself). Returns it, or None when there was none."""
    with transaction.atomic():
        alert = Alert.objects.select_for_update().filter(source=source, key=key, state__in=UNRESOLVED).first()
        if alert is None:
            return None
        return _close(alert, user=None, reason=reason or "The cause went away.")


def _close(alert: Alert, *, user, reason: str) -> Alert:
    before = alert.state
    alert.state, alert.resolved_at, alert.resolved_by = AlertState.RESOLVED, timezone.now(), user
    alert.resolution = reason[:500]
    alert.save(update_fields=["state", "resolved_at", "resolved_by", "resolution"])
    audit_record("alerts.alert.resolved", target=alert, reason=alert.resolution, actor=user,
                 changes={"state": [before, AlertState.RESOLVED]})
    _publish(alert, "resolved")
    return alert


def alert_acknowledge(*, alert: Alert, user, reason: str = "") -> Alert:
    """Someone has seen it and is on it: open → acknowledged (no more 'unread'); repeats keep
    counting. PermissionDenied if `user` may not act on it; ValidationError if it is not open."""
    if not alert_may_act(user, alert):
        raise PermissionDenied("You may see this alert but not acknowledge it.")
    with transaction.atomic():
        alert = Alert.objects.select_for_update().get(pk=alert.pk)
        if alert.state != AlertState.OPEN:
            raise ValidationError(f"This alert is already {alert.state}.")
        alert.state, alert.acknowledged_at, alert.acknowledged_by = AlertState.ACKNOWLEDGED, timezone.now(), user
        alert.save(update_fields=["state", "acknowledged_at", "acknowledged_by"])
        audit_record("alerts.alert.acknowledged", target=alert, reason=reason, actor=user,
                     changes={"state": [AlertState.OPEN, AlertState.ACKNOWLEDGED]})
        _publish(alert, "acknowledged")
    return alert


def alert_close(*, alert: Alert, user, reason: str = "") -> Alert:
    """Resolve an alert by hand (the cause was dealt with), with a reason."""
    if not alert_may_act(user, alert):
        raise PermissionDenied("You may see this alert but not resolve it.")
    with transaction.atomic():
        alert = Alert.objects.select_for_update().get(pk=alert.pk)
        if alert.state == AlertState.RESOLVED:
            raise ValidationError("This alert is already resolved.")
        return _close(alert, user=user, reason=reason.strip() or f"Resolved by {user.get_username()}.")


# --- channels ----------------------------------------------------------------------------------------

CHANNEL_FIELDS = ("name", "kind", "enabled", "min_severity", "email", "url", "bot_token", "chat_id", "quiet_start",
                  "quiet_end")


def channel_validate(channel: Channel) -> None:
    """ValidationError naming each field that does not fit the channel's kind (never echoing a secret)."""
    channel.full_clean(exclude=["owner"])
    problems = {}
    if channel.kind == ChannelKind.EMAIL and not (channel.email or channel.owner.email):
        problems["email"] = "An email channel needs an address (your account has none)."
    if channel.kind in URL_KINDS:
        problem = senders.url_problem(channel.url) if channel.url else "A URL is required for this kind of channel."
        if problem:
            problems["url"] = problem
    if channel.kind == ChannelKind.TELEGRAM:
        if not channel.bot_token:
            problems["bot_token"] = "A Telegram channel needs the bot's token."
        if not channel.chat_id:
            problems["chat_id"] = "A Telegram channel needs the chat id to post to."
    if (channel.quiet_start is None) != (channel.quiet_end is None):
        problems["quiet_end"] = "Give both ends of the quiet hours, or neither."
    if problems:
        raise ValidationError(problems)


def _channel_snapshot(channel: Channel) -> dict:
    return {f: getattr(channel, f) for f in CHANNEL_FIELDS if f not in Channel.SECRET_FIELDS}


def channel_create(*, owner, reason: str = "", **fields) -> Channel:
    """A new delivery channel for `owner` (validated; secrets encrypted; owner's rights granted)."""
    unknown = set(fields) - set(CHANNEL_FIELDS)
    if unknown:
        raise ValidationError({f: "Unknown field." for f in sorted(unknown)})
    channel = Channel(owner=owner, **fields)
    channel_validate(channel)
    with transaction.atomic():
        channel.save()
        grant_owner(channel)
        audit_record("alerts.channel.created", target=channel, reason=reason,
                     changes={k: [None, v] for k, v in _channel_snapshot(channel).items()},
                     metadata={"secret_set": any(getattr(channel, f) for f in Channel.SECRET_FIELDS)})
    return channel


def channel_update(*, channel: Channel, reason: str = "", **fields) -> Channel:
    """Change a channel. A blank or missing secret keeps the stored one (secrets are write-only)."""
    unknown = set(fields) - set(CHANNEL_FIELDS)
    if unknown:
        raise ValidationError({f: "Unknown field." for f in sorted(unknown)})
    with transaction.atomic():
        channel = Channel.objects.select_for_update().select_related("owner").get(pk=channel.pk)
        before = _channel_snapshot(channel)
        secret_changed = False
        for name, value in fields.items():
            if name in Channel.SECRET_FIELDS:
                if not value:
                    continue
                secret_changed = secret_changed or value != getattr(channel, name)
            setattr(channel, name, value)
        channel_validate(channel)
        channel.save()
        audit_record("alerts.channel.updated", target=channel, reason=reason,
                     changes={k: [before[k], v] for k, v in _channel_snapshot(channel).items() if before[k] != v},
                     metadata={"secret_changed": secret_changed})
    return channel


def channel_delete(*, channel: Channel, reason: str = "") -> None:
    with transaction.atomic():
        audit_delete(channel, "alerts.channel.deleted", reason=reason)  # its secrets are redacted in the snapshot
        channel.delete()


def channel_test(*, channel: Channel) -> Delivery:
    """Send a test message on `channel` now and return the delivery with its outcome (a failed
    test is not retried: its error is the answer)."""
    now = timezone.now()
    delivery = Delivery.objects.create(channel=channel, is_test=True, next_attempt_at=now)
    audit_record("alerts.channel.tested", target=channel, reason="send a test")
    return delivery_attempt(delivery_id=delivery.pk) or Delivery.objects.get(pk=delivery.pk)


# --- delivery ----------------------------------------------------------------------------------------

def quiet_until(channel: Channel, now: datetime) -> datetime | None:
    """When the channel's quiet hours end (UTC), if `now` falls inside them; else None.

    The window [quiet_start, quiet_end) is in the owner's time zone and may span midnight;
    equal ends mean no quiet hours."""
    start, end = channel.quiet_start, channel.quiet_end
    if start is None or end is None or start == end:
        return None
    zone = ZoneInfo(channel.owner.timezone or "UTC")
    local = now.astimezone(zone)
    t = local.time().replace(tzinfo=None)
    inside = start <= t < end if start < end else (t >= start or t < end)
    if not inside:
        return None
    day = local.date() if t < end else local.date() + timedelta(days=1)
    return datetime.combine(day, end, tzinfo=zone).astimezone(UTC)


def deliveries_create(*, alert: Alert) -> list[Delivery]:
    """One Delivery per enabled channel whose owner may see `alert` and whose minimum severity it
    reaches; due now, or when the channel's quiet hours end (critical: now). Sent after commit."""
    now = timezone.now()
    rank = SEVERITY_RANK[alert.severity]
    made = []
    for channel in Channel.objects.filter(enabled=True, owner__is_active=True).select_related("owner"):
        if SEVERITY_RANK[channel.min_severity] > rank:
            continue
        if not alerts_visible_to(channel.owner, Alert.objects.filter(pk=alert.pk)).exists():
            continue
        held = None if alert.severity == Severity.CRITICAL else quiet_until(channel, now)
        note = ""
        if held is not None:
            local = held.astimezone(ZoneInfo(channel.owner.timezone or "UTC"))
            note = f"Held for quiet hours until {local:%H:%M} ({channel.owner.timezone})"
        made.append(Delivery.objects.create(channel=channel, alert=alert, next_attempt_at=held or now, note=note))
    for delivery in made:
        if not delivery.note:
            transaction.on_commit(lambda pk=delivery.pk: _enqueue(pk))
    return made


def _enqueue(delivery_id: int) -> None:
    try:
        celery_app.tasks[DELIVER_TASK].delay(delivery_id)
    except Exception:  # noqa: BLE001 - the beat task picks up whatever was not sent
        log.exception("could not queue delivery %s; the periodic sender will pick it up", delivery_id)


def backoff(attempts: int) -> timedelta:
    """Wait before the next try after `attempts` failed ones: base × 2^(attempts−1), capped."""
    base = settings.TRADEPULSE_ALERT_DELIVERY_BACKOFF_S
    return timedelta(seconds=min(base * 2 ** max(attempts - 1, 0), settings.TRADEPULSE_ALERT_DELIVERY_BACKOFF_MAX_S))


def _message(delivery: Delivery) -> senders.Message:
    base_url = settings.TRADEPULSE_BASE_URL.rstrip("/")
    if delivery.is_test:
        text = f"TradePulse test message for channel '{delivery.channel.name}': delivery works."
        return senders.Message(subject="[TradePulse] Test message", text=text,
                               payload={"event": "test", "channel": delivery.channel.name, "text": text})
    alert = delivery.alert
    lines = [f"[{alert.severity.upper()}] {alert.title}"]
    if alert.message:
        lines.append(alert.message)
    about = f" · {alert.target_repr}" if alert.target_repr else ""
    lines.append(f"{alert.source}{about} · seen {alert.count}× since {alert.first_seen:%Y-%m-%d %H:%M} UTC")
    if base_url:
        lines.append(f"{base_url}/alerts/?alert={alert.pk}")
    text = "\n".join(lines)
    return senders.Message(subject=f"[TradePulse {alert.severity}] {alert.title}", text=text,
                           payload={"event": "alert", "text": text, "alert": AlertSerializer(alert).data})


def delivery_attempt(*, delivery_id: int) -> Delivery | None:
    """Try one due delivery: claim it (a conditional UPDATE, so two workers never both send),
    send, and record sent / retry later / failed / skipped. Returns it, or None if it was not due
    or someone else holds it."""
    now = timezone.now()
    claimed = Delivery.objects.filter(pk=delivery_id, state=DeliveryState.PENDING, next_attempt_at__lte=now).update(
        state=DeliveryState.SENDING, attempts=models.F("attempts") + 1, updated_at=now)
    if not claimed:
        return None
    delivery = Delivery.objects.select_related("channel__owner", "alert").get(pk=delivery_id)
    with actor_context.acting(actor_label="system:alerts.deliver"):
        skip = _skip_reason(delivery)
        if skip:
            return _finish(delivery, DeliveryState.SKIPPED, note=skip)
        try:
            senders.send(delivery.channel, _message(delivery))
        except senders.SendError as exc:
            return _failed(delivery, str(exc))
        except Exception:  # noqa: BLE001 - a bug here must not lose the delivery: retried, logged
            log.exception("delivery %s raised", delivery.pk)
            return _failed(delivery, f"internal error (request {actor_context.current().request_id}); see the log")
        return _finish(delivery, DeliveryState.SENT, sent_at=timezone.now(), last_error="", note="")


def _skip_reason(delivery: Delivery) -> str:
    if delivery.is_test:
        return ""
    if not delivery.channel.enabled:
        return "The channel was switched off before it could be sent."
    if delivery.alert.state == AlertState.RESOLVED:
        return "The alert was resolved before it could be sent."
    return ""


def _failed(delivery: Delivery, error: str) -> Delivery:
    if delivery.is_test or delivery.attempts >= settings.TRADEPULSE_ALERT_DELIVERY_MAX_ATTEMPTS:
        return _finish(delivery, DeliveryState.FAILED, last_error=error[:500],
                       note="" if delivery.is_test else f"Gave up after {delivery.attempts} attempts.")
    retry_at = timezone.now() + backoff(delivery.attempts)
    return _finish(delivery, DeliveryState.PENDING, last_error=error[:500], next_attempt_at=retry_at,
                   note=f"Attempt {delivery.attempts} failed; next try at {retry_at:%H:%M:%S} UTC.")


def _finish(delivery: Delivery, state: str, **fields) -> Delivery:
    with transaction.atomic():
        for key, value in {"state": state, **fields}.items():
            setattr(delivery, key, value)
        delivery.save(update_fields=["state", *fields, "updated_at"])
        if state != DeliveryState.PENDING:
            audit_record(f"alerts.delivery.{state}", target=delivery.channel,
                         reason=delivery.last_error or delivery.note or "delivered",
                         metadata={"delivery": delivery.pk, "alert": delivery.alert_id, "attempts": delivery.attempts,
                                   "test": delivery.is_test})
        events.publish("alerts.delivery.updated", DeliverySerializer(delivery).data, users=[delivery.channel.owner_id])
    return delivery


def deliveries_due(*, now: datetime | None = None) -> list[int]:
    """Ids of deliveries due now (first tries after quiet hours, retries), after putting rows
    left 'sending' by a dead worker back to pending."""
    now = now or timezone.now()
    Delivery.objects.filter(state=DeliveryState.SENDING, updated_at__lt=now - STUCK_SENDING).update(
        state=DeliveryState.PENDING, next_attempt_at=now, note="The worker sending it stopped; trying again.")
    return list(Delivery.objects.filter(state=DeliveryState.PENDING, next_attempt_at__lte=now)
                .order_by("next_attempt_at").values_list("pk", flat=True)[:500])


def delivery_retry(*, delivery: Delivery, user, reason: str = "") -> Delivery:
    """Send a failed or skipped delivery again now (its owner or an operator)."""
    if delivery.state not in (DeliveryState.FAILED, DeliveryState.SKIPPED):
        raise ValidationError(f"Only failed or skipped deliveries can be retried; this one is {delivery.state}.")
    with transaction.atomic():
        Delivery.objects.filter(pk=delivery.pk).update(state=DeliveryState.PENDING, next_attempt_at=timezone.now(),
                                                       note="Retried by hand.", updated_at=timezone.now())
        audit_record("alerts.delivery.retried", target=delivery.channel, reason=reason or "retry", actor=user,
                     metadata={"delivery": delivery.pk})
        transaction.on_commit(lambda: _enqueue(delivery.pk))
    delivery.refresh_from_db()
    return delivery


def visible_alert(user, pk: int) -> Alert:
    """The alert `pk` if `user` may see it (Alert.DoesNotExist otherwise: a 404, never a 403)."""
    return alerts_visible_to(user).get(pk=pk)
