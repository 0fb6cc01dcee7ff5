"""The /ws/events/ channel: session-authenticated, per-user groups, permission-checked topics."""
from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client

from tradepulse.asgi import application
from tradepulse.core import events

pytestmark = pytest.mark.django_db(transaction=True)


async def _connect(user=None) -> WebsocketCommunicator:
    headers = [(b"origin", b"http://127.0.0.1"), (b"host", b"127.0.0.1")]
    if user is not None:
        client = Client()
        await sync_to_async(client.force_login)(user)
        cookie = f"sessionid={client.cookies['sessionid'].value}"
        headers.append((b"cookie", cookie.encode()))
    communicator = WebsocketCommunicator(application, "/ws/events/", headers=headers)
    connected, _ = await communicator.connect()
    assert connected
    return communicator


async def test_anonymous_connection_is_closed_with_signed_out_code(db):
    communicator = await _connect(None)
    error = await communicator.receive_json_from()
    assert error["type"] == "system.error" and "Log in" in error["data"]["message"]
    closed = await communicator.receive_output()
    # daphne refuses 1008 from an application ("invalid close code"); 4000-4999 is ours.
    assert closed == {"type": "websocket.close", "code": 4401}


async def test_malformed_frames_get_an_error_and_the_connection_stays(alice):
    ws = await _connect(alice)
    await ws.receive_json_from()
    for frame in ["not json", "[1, 2]", '"text"', "{", "x" * 5000]:
        await ws.send_to(text_data=frame)
        error = await ws.receive_json_from(timeout=3)
        assert error["type"] == "system.error" and "Not a valid message" in error["data"]["message"], frame
        await ws.send_json_to({"action": "ping"})
        assert (await ws.receive_json_from(timeout=3))["type"] == "system.pong"
    await ws.disconnect()


async def test_odd_topics_are_refused_and_the_connection_stays(alice):
    ws = await _connect(alice)
    await ws.receive_json_from()
    for topic in ["backtest-\u00b2", "backtest-\u0663", "system x", "user-", None, 42, {"a": 1},
                  "backtest-" + "9" * 200, "user-0"]:
        await ws.send_json_to({"action": "subscribe", "topic": topic})
        error = await ws.receive_json_from(timeout=3)
        assert error["type"] == "system.error", topic
        assert "Not a valid topic" in error["data"]["message"] or "Not allowed" in error["data"]["message"]
    await ws.send_json_to({"action": "subscribe", "topic": "system"})
    assert (await ws.receive_json_from(timeout=3))["type"] == "system.subscribed"
    await ws.disconnect()


async def test_user_receives_own_events_only(alice, bob):
    ws_alice, ws_bob = await _connect(alice), await _connect(bob)
    assert (await ws_alice.receive_json_from())["type"] == "system.hello"
    assert (await ws_bob.receive_json_from())["type"] == "system.hello"
    await sync_to_async(events.publish)("tests.thing.happened", {"n": 1}, users=[alice.pk], ops=False)
    message = await ws_alice.receive_json_from(timeout=3)
    assert message["type"] == "tests.thing.happened" and message["data"] == {"n": 1}
    assert message["id"] and message["ts"]
    assert await ws_bob.receive_nothing(timeout=0.3)
    await ws_alice.disconnect()
    await ws_bob.disconnect()


async def test_operator_receives_everything_once(alice, olivia):
    ws = await _connect(olivia)
    await ws.receive_json_from()
    await sync_to_async(events.publish)("tests.thing.happened", {"n": 2}, users=[alice.pk, olivia.pk])
    assert (await ws.receive_json_from(timeout=3))["data"] == {"n": 2}
    assert await ws.receive_nothing(timeout=0.3)  # in two groups, delivered once
    await ws.disconnect()


async def test_topic_subscription_is_permission_checked(alice, bob):
    ws = await _connect(alice)
    await ws.receive_json_from()
    await ws.send_json_to({"action": "subscribe", "topic": f"user-{bob.pk}"})
    refused = await ws.receive_json_from()
    assert refused["type"] == "system.error" and "Not allowed" in refused["data"]["message"]
    await ws.send_json_to({"action": "subscribe", "topic": "system"})
    assert (await ws.receive_json_from())["type"] == "system.subscribed"
    await sync_to_async(events.publish)("system.health", {"status": "ok"}, topics=["system"], ops=False)
    assert (await ws.receive_json_from(timeout=3))["type"] == "system.health"
    await ws.disconnect()


async def test_event_is_sent_only_after_the_transaction_commits(alice):
    from django.db import transaction

    ws = await _connect(alice)
    await ws.receive_json_from()

    def publish_then_roll_back():
        try:
            with transaction.atomic():
                events.publish("tests.rolled.back", {}, users=[alice.pk])
                raise RuntimeError("abort")
        except RuntimeError:
            pass

    await sync_to_async(publish_then_roll_back)()
    assert await ws.receive_nothing(timeout=0.3)
    await ws.disconnect()


async def test_idle_connection_outlives_every_timeout_then_gets_the_event(alice):
    """Held idle longer than the channel layer's blocking read and the Redis socket timeout."""
    ws = await _connect(alice)
    await ws.receive_json_from()
    assert await ws.receive_nothing(timeout=12, interval=0.5)  # no close, no crash while idle
    await sync_to_async(events.publish)("tests.thing.happened", {"n": 3}, users=[alice.pk], ops=False)
    assert (await ws.receive_json_from(timeout=3))["data"] == {"n": 3}
    await ws.disconnect()
