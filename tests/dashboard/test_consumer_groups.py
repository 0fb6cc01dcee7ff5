"""Issue 9, finding 1: a closed connection leaves no group membership behind in the channel
layer (with the Redis layer, stale memberships used to pile up while clients reconnected in a
loop): every group the consumer joined, its user's and the topics it followed, is left on
disconnect. Runs on the suite's channel layer: Redis whenever Redis answers (always in CI)."""
from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings

from apps.backtests import services as backtests
from tests.backtests.conftest import MIN, T0, market, ms_dt  # noqa: F401
from tradepulse.core import events

from .test_consumer import _connect

pytestmark = pytest.mark.django_db(transaction=True)


async def _members(group: str) -> int:
    layer = get_channel_layer()
    if hasattr(layer, "_group_key"):  # channels_redis: the group is a sorted set in Redis
        connection = layer.connection(layer.consistent_hash(group))
        return await connection.zcard(layer._group_key(group))
    return len(layer.groups.get(group, {}))  # the in-memory layer of the embedded mode


async def test_disconnect_leaves_no_membership_in_the_channel_layer(alice, market):  # noqa: F811
    run = await sync_to_async(backtests.backtest_create)(
        owner=alice, market=market, timeframe="1m", strategy_key="sma_cross", start=ms_dt(T0),
        end=ms_dt(T0 + 1000 * MIN), enqueue=False)
    user_group, topic_group = events.user_group(alice.pk), events.topic_group(f"backtest-{run.pk}")
    before = (await _members(user_group), await _members(topic_group))
    ws = await _connect(alice)
    await ws.receive_json_from()  # hello
    await ws.send_json_to({"action": "subscribe", "topic": f"backtest-{run.pk}"})
    assert (await ws.receive_json_from())["type"] == "system.subscribed"
    assert (await _members(user_group), await _members(topic_group)) == (before[0] + 1, before[1] + 1)
    await ws.disconnect()
    assert (await _members(user_group), await _members(topic_group)) == before


def test_the_suite_uses_the_redis_layer_when_redis_is_there():
    if settings.REDIS_URL:
        assert settings.CHANNEL_LAYERS["default"]["BACKEND"] == "channels_redis.core.RedisChannelLayer"
