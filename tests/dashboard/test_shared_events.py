"""An object's live events reach everyone who may see it: a colleague it is shared with, not an outsider."""
from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client
from guardian.shortcuts import assign_perm

from apps.backtests import services as backtests
from tests.backtests.conftest import MIN, T0, market, ms_dt  # noqa: F401  (fixture)
from tradepulse.asgi import application

pytestmark = pytest.mark.django_db(transaction=True)


async def _connect(user) -> WebsocketCommunicator:
    client = Client()
    await sync_to_async(client.force_login)(user)
    headers = [(b"origin", b"http://127.0.0.1"), (b"host", b"127.0.0.1"),
               (b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode())]
    communicator = WebsocketCommunicator(application, "/ws/events/", headers=headers)
    connected, _ = await communicator.connect()
    assert connected
    assert (await communicator.receive_json_from())["type"] == "system.hello"
    return communicator


async def _types_until_finished(ws, run_id: int) -> list[str]:
    seen = []
    while True:
        message = await ws.receive_json_from(timeout=10)
        if message["data"].get("id") == run_id:
            seen.append(message["type"])
        if message["type"] == "backtests.run.finished":
            return seen


async def test_a_colleague_the_run_is_shared_with_sees_its_live_events(alice, bob, charlie, market):  # noqa: F811
    def create_and_share():
        run = backtests.backtest_create(owner=alice, market=market, timeframe="1m", strategy_key="sma_cross",
                                        parameters={"fast": 10, "slow": 30}, start=ms_dt(T0),
                                        end=ms_dt(T0 + 1000 * MIN), enqueue=False)
        assign_perm("backtests.view_backtestrun", bob, run)
        return run

    run = await sync_to_async(create_and_share)()
    ws_alice, ws_bob, ws_charlie = await _connect(alice), await _connect(bob), await _connect(charlie)
    await sync_to_async(backtests.backtest_execute)(run.pk)
    for ws in (ws_bob, ws_alice):  # before the fix, bob waited here in vain
        seen = await _types_until_finished(ws, run.pk)
        assert seen[0] == "backtests.run.started" and "backtests.run.progress" in seen
        assert seen[-1] == "backtests.run.finished"
    assert await ws_charlie.receive_nothing(timeout=0.5)  # an outsider hears nothing
    for ws in (ws_alice, ws_bob, ws_charlie):
        await ws.disconnect()
