"""The one WebSocket endpoint, /ws/events/.

Authenticated by session; anonymous connections are accepted only to be closed with 4401
(the 4000-4999 range is the application's: daphne refuses 1008 from an application) so the
page can show "signed out" instead of reconnecting forever. Each user joins `user-<id>` (and
operators `ops`); topics (`backtest-42`) are joined on request after a permission check.
Client messages: {"action": "subscribe"|"unsubscribe", "topic": "..."} and {"action": "ping"}.
A frame that is not such a message gets a `system.error` answer; the connection stays open.
"""
from __future__ import annotations

import json
import logging
import re
from collections import deque

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from tradepulse.core.permissions import sees_everything
from tradepulse.core import events

log = logging.getLogger(__name__)

# The client (static/js/tradepulse.js) stops reconnecting on a 44xx close: retrying cannot help.
CLOSE_SIGNED_OUT = 4401
MAX_TOPICS = 100
MAX_FRAME_CHARS = 4096
# `<prefix>` or `<prefix>-<key>`, ASCII only: it becomes a channel-layer group name.
TOPIC_RE = re.compile(r"[a-z]{1,32}(?:-[A-Za-z0-9_.]{1,64})?")


class EventsConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self):
        events.remember_server_loop()
        self.user = self.scope.get("user")
        self.groups_joined: set[str] = set()
        self.seen: deque[str] = deque(maxlen=512)
        await self.accept()
        if self.user is None or not self.user.is_authenticated:
            await self.send_json(events.make_message("system.error", {"message": "Log in to receive live events."}))
            await self.close(code=CLOSE_SIGNED_OUT)
            return
        await self._join(events.user_group(self.user.pk))
        if await database_sync_to_async(sees_everything)(self.user):
            await self._join(events.OPS_GROUP)
        await self.send_json(events.make_message("system.hello", {"user": self.user.get_username()}))

    async def disconnect(self, code):
        for group in getattr(self, "groups_joined", ()):
            await self.channel_layer.group_discard(group, self.channel_name)

    @classmethod
    async def decode_json(cls, text_data):
        if text_data is None or len(text_data) > MAX_FRAME_CHARS:
            raise ValueError("expected a JSON text frame of at most %d characters" % MAX_FRAME_CHARS)
        content = json.loads(text_data)
        if not isinstance(content, dict):
            raise ValueError("expected a JSON object")
        return content

    async def receive(self, text_data=None, bytes_data=None, **kwargs):
        try:
            content = await self.decode_json(text_data)
        except ValueError as exc:  # json.JSONDecodeError is a ValueError
            await self._error(f"Not a valid message: {exc}.")
            return
        try:
            await self.receive_json(content)
        except Exception:  # one bad message must not end the user's live feed
            log.exception("websocket message failed: %.200r", content)
            await self._error("That message could not be handled.")

    async def receive_json(self, content, **kwargs):
        action = content.get("action")
        if action == "ping":
            await self.send_json(events.make_message("system.pong", {}))
            return
        if action not in ("subscribe", "unsubscribe"):
            await self._error(f"Unknown action {str(action)[:40]!r}.")
            return
        topic = content.get("topic")
        if not isinstance(topic, str) or not TOPIC_RE.fullmatch(topic):
            shown = str(topic)[:100]
            await self._error(f"Not a valid topic: {shown!r} (expected e.g. 'backtest-42').", topic=shown)
            return
        if action == "subscribe":
            allowed = len(self.groups_joined) < MAX_TOPICS and await database_sync_to_async(events.may_subscribe)(
                self.user, topic)
            if not allowed:
                await self._error(f"Not allowed to follow {topic!r}.", topic=topic)
                return
            await self._join(events.topic_group(topic))
            await self.send_json(events.make_message("system.subscribed", {"topic": topic}))
        else:
            group = events.topic_group(topic)
            if group in self.groups_joined:
                await self.channel_layer.group_discard(group, self.channel_name)
                self.groups_joined.discard(group)

    async def _error(self, message: str, **extra):
        await self.send_json(events.make_message("system.error", {"message": message, **extra}))

    async def event_message(self, event):
        message = event["message"]
        # A client in several groups (own, ops, a topic) gets each event once.
        if message["id"] in self.seen:
            return
        self.seen.append(message["id"])
        await self.send_json(message)

    async def _join(self, group: str):
        await self.channel_layer.group_add(group, self.channel_name)
        self.groups_joined.add(group)
