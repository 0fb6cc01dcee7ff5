"""Raising, grouping, escalating, auto-resolving, acknowledging and who sees which alert."""
from __future__ import annotations

import pytest

from apps.alerts.models import Alert, AlertState
from apps.alerts.selectors import alerts_visible_to, unread_count
from apps.alerts.services import alert_acknowledge, alert_close, alert_raise, alert_resolve
from apps.audit.models import AuditEvent
from tests.owned_factories import download_job


def test_identical_alerts_are_grouped_not_repeated(db):
    first = alert_raise(severity="warning", source="system", title="Queue backlog", message="120 waiting",
                        key="backlog:default")
    again = alert_raise(severity="warning", source="system", title="Queue backlog", message="340 waiting",
                        key="backlog:default")
    third = alert_raise(severity="warning", source="system", title="Queue backlog", message="500 waiting",
                        key="backlog:default")
    assert first.pk == again.pk == third.pk
    alert = Alert.objects.get()
    assert alert.count == 3
    assert alert.message == "500 waiting"  # the latest occurrence's words
    assert alert.first_seen < alert.last_seen
    # one audit event for the raise, none for the repeats (they only count)
    assert AuditEvent.objects.filter(action="alerts.alert.raised").count() == 1


def test_without_a_key_the_title_and_target_group(alice):
    job = download_job(alice)
    a = alert_raise(severity="error", source="marketdata", title="Download failed", target=job)
    b = alert_raise(severity="error", source="marketdata", title="Download failed", target=job)
    other = alert_raise(severity="error", source="marketdata", title="Download failed", target=download_job(alice))
    assert a.pk == b.pk != other.pk
    assert Alert.objects.get(pk=a.pk).count == 2


def test_a_resolved_alert_raised_again_is_a_new_alert(db):
    first = alert_raise(severity="error", source="system", title="Workers down", key="component:workers")
    resolved = alert_resolve(source="system", key="component:workers", reason="A worker answered again.")
    assert resolved.pk == first.pk and resolved.state == AlertState.RESOLVED
    assert resolved.resolved_by is None and resolved.resolution == "A worker answered again."
    second = alert_raise(severity="error", source="system", title="Workers down", key="component:workers")
    assert second.pk != first.pk and second.count == 1
    assert Alert.objects.filter(state=AlertState.RESOLVED).count() == 1


def test_resolving_what_is_not_open_does_nothing(db):
    assert alert_resolve(source="system", key="never-raised") is None


def test_escalation_reopens_an_acknowledged_alert(olivia):
    alert = alert_raise(severity="warning", source="system", title="Disk filling", key="disk")
    alert_acknowledge(alert=alert, user=olivia, reason="looking")
    same = alert_raise(severity="warning", source="system", title="Disk filling", key="disk")
    assert same.state == AlertState.ACKNOWLEDGED and same.count == 2
    worse = alert_raise(severity="critical", source="system", title="Disk full", key="disk")
    assert worse.pk == alert.pk
    assert worse.state == AlertState.OPEN and worse.severity == "critical" and worse.acknowledged_by is None
    assert AuditEvent.objects.filter(action="alerts.alert.escalated", target_id=str(alert.pk)).exists()


def test_an_unknown_severity_is_refused_with_the_choices(db):
    with pytest.raises(ValueError, match="info, warning, error, critical"):
        alert_raise(severity="fatal", source="x", title="y")


def test_raising_publishes_to_the_targets_owner_and_operators(alice, bob, published,
                                                               django_capture_on_commit_callbacks):
    job = download_job(alice)
    with django_capture_on_commit_callbacks(execute=True):
        alert_raise(severity="error", source="marketdata", title="Download failed", target=job)
    raised = [(groups, m) for groups, m in published if m["type"] == "alerts.alert.raised"]
    assert len(raised) == 1
    groups, message = raised[0]
    assert f"user-{alice.pk}" in groups and "ops" in groups and f"user-{bob.pk}" not in groups
    assert message["data"]["title"] == "Download failed" and message["data"]["target_repr"] == str(job)


def test_acknowledge_flow(api, alice, olivia):
    job = download_job(alice)
    alert = alert_raise(severity="error", source="marketdata", title="Download failed", target=job)
    assert unread_count(alice) == 1
    response = api(alice).post(f"/api/v1/alerts/{alert.pk}/acknowledge/", {"reason": "retrying it"}, format="json")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["state"] == "acknowledged" and body["acknowledged_by"] == "alice" and body["acknowledged_at"]
    assert unread_count(alice) == 0
    assert api(alice).get("/api/v1/alerts/summary/").json() == {
        "unread": 0, "open": 1, "by_severity": {"info": 0, "warning": 0, "error": 1, "critical": 0}}
    event = AuditEvent.objects.get(action="alerts.alert.acknowledged")
    assert event.actor_label == "alice" and event.reason == "retrying it"
    again = api(alice).post(f"/api/v1/alerts/{alert.pk}/acknowledge/", {}, format="json")
    assert again.status_code == 400 and "already acknowledged" in again.json()["error"]["message"]
    done = api(alice).post(f"/api/v1/alerts/{alert.pk}/resolve/", {"reason": "re-downloaded"}, format="json")
    assert done.status_code == 200
    assert done.json()["state"] == "resolved" and done.json()["resolved_by"] == "alice"
    assert done.json()["resolution"] == "re-downloaded"
    assert api(alice).get("/api/v1/alerts/?state=resolved").json()["count"] == 1


def test_alerts_are_private_to_who_may_see_the_target(api, alice, bob, charlie, olivia, victor):
    from apps.accounts.services import object_share

    job = download_job(alice)
    mine = alert_raise(severity="error", source="marketdata", title="Download failed", target=job)
    system = alert_raise(severity="critical", source="system", title="Workers down", key="component:workers")
    ids = lambda user: {a["id"] for a in api(user).get("/api/v1/alerts/").json()["results"]}  # noqa: E731
    assert ids(alice) == {mine.pk}  # not the system alert
    assert ids(charlie) == set()
    assert ids(olivia) == {mine.pk, system.pk}
    assert api(charlie).get(f"/api/v1/alerts/{mine.pk}/").status_code == 404
    assert api(alice).get(f"/api/v1/alerts/{system.pk}/").status_code == 404
    assert api(charlie).post(f"/api/v1/alerts/{mine.pk}/acknowledge/", {}, format="json").status_code == 404
    assert api(alice).post(f"/api/v1/alerts/{system.pk}/resolve/", {}, format="json").status_code == 404
    # shared for viewing: bob sees it, cannot act on it
    object_share(obj=job, with_user=bob, actions=("view",), reason="test")
    assert ids(bob) == {mine.pk}
    assert api(bob).post(f"/api/v1/alerts/{mine.pk}/acknowledge/", {}, format="json").status_code == 403
    # a read-only viewer role never acts, operators act on anything
    assert api(olivia).post(f"/api/v1/alerts/{system.pk}/acknowledge/", {}, format="json").status_code == 200
    assert Alert.objects.get(pk=mine.pk).state == AlertState.OPEN
    assert alerts_visible_to(victor).count() == 0


def test_an_alert_addressed_to_a_user_is_theirs(alice, bob):
    alert = alert_raise(severity="warning", source="alerts", title="Your webhook keeps failing", owner=alice)
    assert list(alerts_visible_to(alice)) == [alert]
    assert not alerts_visible_to(bob).exists()
    alert_close(alert=alert, user=alice, reason="fixed the URL")
    assert Alert.objects.get(pk=alert.pk).resolved_by == alice


def test_alert_list_query_budget(api, olivia, alice, django_assert_max_num_queries):
    for i in range(30):
        alert_raise(severity="warning", source="system", title=f"Thing {i}", key=f"k{i}")
    client = api(olivia)
    with django_assert_max_num_queries(12):
        response = client.get("/api/v1/alerts/")
    assert response.json()["count"] == 30
