"""manage.py alerts: the same services as the API, as a named user, with --json."""
from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from apps.alerts.models import Alert, AlertState, Delivery
from apps.alerts.services import alert_raise, channel_create
from apps.audit.models import AuditEvent
from tests.owned_factories import download_job


def _json(*args) -> dict:
    out = StringIO()
    call_command("alerts", *args, "--json", stdout=out)
    return json.loads(out.getvalue())


def test_list_acknowledge_and_resolve_as_a_user(alice, charlie, olivia):
    mine = alert_raise(severity="error", source="marketdata", title="Download failed", target=download_job(alice))
    system = alert_raise(severity="critical", source="system", title="workers is down", key="component:workers")
    assert [a["id"] for a in _json("list", "--as", "alice")["alerts"]] == [mine.pk]
    assert {a["id"] for a in _json("list", "--as", "olivia")["alerts"]} == {mine.pk, system.pk}
    with pytest.raises(CommandError, match="no alert .* that charlie may see"):
        call_command("alerts", "acknowledge", str(mine.pk), "--as", "charlie")
    done = _json("acknowledge", str(mine.pk), "--as", "alice", "--reason", "on it")
    assert done["alert"]["state"] == "acknowledged" and done["alert"]["acknowledged_by"] == "alice"
    event = AuditEvent.objects.get(action="alerts.alert.acknowledged")
    assert event.actor_label == "alice" and event.reason == "on it"
    assert _json("resolve", str(system.pk), "--as", "olivia", "--reason", "restarted")["alert"]["state"] == "resolved"
    assert Alert.objects.get(pk=system.pk).resolution == "restarted"
    assert _json("list", "--as", "olivia", "--state", "resolved")["count"] == 1
    assert Alert.objects.get(pk=mine.pk).state == AlertState.ACKNOWLEDGED


def test_test_channel_and_deliver_due(alice, receiver):
    channel = channel_create(owner=alice, name="hook", kind="webhook", url=f"{receiver.base}/h")
    result = _json("test-channel", str(channel.pk), "--as", "alice")
    assert result["delivery"]["state"] == "sent" and receiver.requests[0]["body"]["event"] == "test"
    assert _json("deliver-due") == {"attempted": 0}
    with pytest.raises(CommandError, match="--as USERNAME is required"):
        call_command("alerts", "list")
    assert Delivery.objects.count() == 1
