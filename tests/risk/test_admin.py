"""The admin is a front door over the same services: a kill switch tripped and released there is
audited with the typed reason; a profile edit there needs a reason and records before/after."""
from __future__ import annotations

import pytest

from apps.audit.models import AuditEvent
from apps.risk.models import KillSwitch, RiskProfile


@pytest.fixture
def admin_client(client, olivia):
    client.force_login(olivia)
    return client


def test_trip_and_release_the_kill_switch_in_the_admin(admin_client, dep):
    r = admin_client.post("/admin/risk/killswitch/add/", {"scope": "deployment", "deployment": dep.pk,
                                                         "reason": "admin drill", "flatten": ""})
    assert r.status_code == 302, r.content[:2000]
    switch = KillSwitch.objects.get()
    assert switch.active and switch.reason == "admin drill" and switch.tripped_by.username == "olivia"
    r = admin_client.post(f"/admin/risk/killswitch/{switch.pk}/change/", {"release_reason": "drill over"})
    assert r.status_code == 302
    switch.refresh_from_db()
    assert not switch.active and switch.release_reason == "drill over"
    assert list(AuditEvent.objects.filter(action__startswith="risk.killswitch").order_by("id")
                .values_list("action", "reason")) == [("risk.killswitch.tripped", "admin drill"),
                                                      ("risk.killswitch.released", "drill over")]


def test_profile_edit_in_the_admin_goes_through_the_service(admin_client, db):
    g = RiskProfile.objects.get(target_key="global")
    page = admin_client.get(f"/admin/risk/riskprofile/{g.pk}/change/")
    assert page.status_code == 200 and b"reason" in page.content
    data = {f.name: getattr(g, f.name) if getattr(g, f.name) is not None else "" for f in g._meta.fields
            if f.name not in ("id", "created_at", "updated_at", "target_key", "scope", "user", "account", "deployment")}
    data.update({"daily_loss_pct": "3", "reason": "calmer days"})
    data = {k: ("true" if v is True else "false" if v is False else v) for k, v in data.items()}  # NullBooleanSelect
    r = admin_client.post(f"/admin/risk/riskprofile/{g.pk}/change/", data)
    assert r.status_code == 302, r.content[:3000]
    g.refresh_from_db()
    assert str(g.daily_loss_pct) == "3.0000"
    event = AuditEvent.objects.get(action="risk.profile.updated")
    assert event.reason == "calmer days" and event.changes == {"daily_loss_pct": ["5.0000", "3"]}
