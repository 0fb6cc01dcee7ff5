"""The one WebSocket endpoint, /ws/events/.

Authenticated by session; anonymous connections are accepted only to be closed with 1008
(policy violation) so the client sees why. Each user joins `user-<id>` (and operators `ops`);
topics (`backtest-42`) are joined on request after a permission check. Client messages:
{"action": "subscribe"|"unsubscribe", "topic": "..."} and {"action": "ping"}.
"""
from __future__ import annotations

from collections import deque

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from tradepulse.core.permissions import sees_everything
from tradepulse.core import events

POLICY_VIOLATION = 1008
MAX_TOPICS = 100


class EventsConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self):
        events.remember_server_loop()
        self.user = self.scope.get("user")
        self.groups_joined: set[str] = set()
        self.seen: deque[str] = deque(maxlen=512)
        await self.accept()
        if self.user is None or not self.user.is_authenticated:
            await self.send_json(events.make_message("system.error", {"message": "Log in to receive live events."}))
            await self.close(code=POLICY_VIOLATION)
            return
        await self._join(events.user_group(self.user.pk))
        if await database_sync_to_async(sees_everything)(self.user):
            await self._join(events.OPS_GROUP)
        await self.send_json(events.make_message("system.hello", {"user": self.user.get_username()}))

    async def disconnect(self, code):
        for group in getattr(self, "groups_joined", ()):
            await self.channel_layer.group_discard(group, self.channel_name)

    async def receive_json(self, content, **kwargs):
        action = content.get("action") if isinstance(content, dict) else None
        topic = str(content.get("topic", ""))[:100] if isinstance(content, dict) else ""
        if action == "subscribe":
            allowed = len(self.groups_joined) < MAX_TOPICS and await database_sync_to_async(events.may_subscribe)(
                self.user, topic)
            if not allowed:
                await self.send_json(events.make_message("system.error", {"message": f"Not allowed to follow {topic!r}.",
                                                                          "topic": topic}))
                return
            await self._join(events.topic_group(topic))
            await self.send_json(events.make_message("system.subscribed", {"topic": topic}))
        elif action == "unsubscribe":
            group = events.topic_group(topic)
            if group in self.groups_joined:
                await self.channel_layer.group_discard(group, self.channel_name)
                self.groups_joined.discard(group)
        elif action == "ping":
            await self.send_json(events.make_message("system.pong", {}))
        else:
            await self.send_json(events.make_message("system.error", {"message": f"Unknown action {action!r}."}))

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
