"""Live events: one publish helper for services and tasks, one topic registry for consumers.

Message shape (DESIGN.md): {"type": "<app>.<event>", "id": <event id>, "data": {...}, "ts": ...}.
Events go to per-user groups (`user-<id>`), to the operators' group (`ops`) and to topic groups
(`topic-<name>`), never to one global group filtered per consumer. Sending waits for the
surrounding transaction to commit, so a client never hears of a row it cannot yet read.
"""
from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from guardian.shortcuts import get_users_with_perms

import json

log = logging.getLogger(__name__)

OPS_GROUP = "ops"
# The in-memory layer's queues belong to the event loop serving websockets; embedded worker
# threads must hand their sends to that loop instead of starting loops of their own.
_server_loop: asyncio.AbstractEventLoop | None = None


def user_group(user_id: int) -> str:
    return f"user-{user_id}"


def topic_group(topic: str) -> str:
    return f"topic-{topic}"


def remember_server_loop() -> None:
    """Called by the consumer on connect (inside the server's event loop)."""
    global _server_loop
    _server_loop = asyncio.get_running_loop()


def _jsonable(data):
    return json.loads(json.dumps(data, cls=DjangoJSONEncoder))


def make_message(event_type: str, data: dict, *, event_id: str | None = None) -> dict:
    return {
        "type": event_type,
        "id": event_id or uuid.uuid4().hex,
        "data": _jsonable(data),
        "ts": datetime.now(UTC).isoformat(timespec="milliseconds"),
    }


def publish(
    event_type: str,
    data: dict,
    *,
    users: Iterable[int] = (),
    topics: Iterable[str] = (),
    ops: bool = True,
) -> dict:
    """Send an event after the current transaction commits.

    `users`: ids whose personal group receives it (owner, and users the object is shared
    with); `topics`: topic names (`backtest-42`) whose subscribers receive it; `ops`: whether
    operators (who see everything) receive it. Returns the message (useful in tests).
    """
    message = make_message(event_type, data)
    groups = [user_group(uid) for uid in dict.fromkeys(users) if uid is not None]
    groups += [topic_group(t) for t in dict.fromkeys(topics)]
    if ops:
        groups.append(OPS_GROUP)
    transaction.on_commit(lambda: send_now(groups, message))
    return message


def audience(obj) -> list[int]:
    """Ids of the users who may see `obj`: its owner and every active user holding an object
    permission on it (directly or through a group, django-guardian)."""
    users = [obj.owner_id] if getattr(obj, "owner_id", None) else []
    shared = get_users_with_perms(obj, with_group_users=True).filter(is_active=True).values_list("pk", flat=True)
    return list(dict.fromkeys([*users, *shared]))


def publish_for(obj, event_type: str, data: dict) -> dict:
    """Send an object's event to everyone who may see it: the owner, users it is shared with,
    operators, and subscribers of its topic (`<prefix>-<pk>` from `register_model_topic`)."""
    prefix = _model_topics.get(type(obj))
    topics = [f"{prefix}-{obj.pk}"] if prefix else []
    return publish(event_type, data, users=audience(obj), topics=topics, ops=True)


def send_now(groups: list[str], message: dict) -> None:
    layer = get_channel_layer()
    if layer is None:
        return

    async def _send_all():
        for group in groups:
            await layer.group_send(group, {"type": "event.message", "message": message})

    try:
        loop = _server_loop
        if loop is not None and loop.is_running() and not _in_loop(loop):
            asyncio.run_coroutine_threadsafe(_send_all(), loop).result(timeout=5)
        else:
            async_to_sync(_send_all)()
    except Exception:  # a dead channel layer must never break the business operation
        log.exception("could not publish %s", message["type"])


def _in_loop(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


# --- Topics -----------------------------------------------------------------------------------
# prefix -> check(user, key) -> bool. Apps register theirs in AppConfig.ready().
_topic_checks: dict[str, Callable] = {}
_model_topics: dict[type, str] = {}  # model -> its topic prefix, for publish_for


def register_topic(prefix: str, check: Callable) -> None:
    _topic_checks[prefix] = check


def register_model_topic(prefix: str, model) -> None:
    """`<prefix>-<pk>` may be joined by users who may see that object."""
    from tradepulse.core.permissions import visible_to

    def check(user, key: str) -> bool:
        if not key.isdigit():
            return False
        return visible_to(user, model.objects.filter(pk=int(key))).exists()

    register_topic(prefix, check)
    _model_topics[model] = prefix


def may_subscribe(user, topic: str) -> bool:
    prefix, _, key = topic.partition("-")
    check = _topic_checks.get(prefix)
    return bool(check and user.is_authenticated and check(user, key))
