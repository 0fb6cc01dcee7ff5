"""An operator's kill switch on a trader's scope is an emergency stop the trader may not lift."""
from __future__ import annotations

import pytest

from apps.risk import services as risk
from apps.risk.models import KillSwitch
from tests.owned_factories import deployment

pytestmark = pytest.mark.django_db


def test_trader_cannot_release_an_operators_kill_switch(alice, olivia, api):
    d = deployment(alice)
    switch = risk.killswitch_trip(scope="deployment", target=d, reason="runaway orders", actor=olivia)
    r = api(alice).post(f"/api/v1/risk/kill-switches/{switch.pk}/release/", {"reason": "I disagree"}, format="json")
    assert r.status_code == 403, r.content
    assert "olivia" in r.json()["error"]["message"] and "operator" in r.json()["error"]["message"]
    assert KillSwitch.objects.get(pk=switch.pk).active
    r = api(olivia).post(f"/api/v1/risk/kill-switches/{switch.pk}/release/", {"reason": "checked"}, format="json")
    assert r.status_code == 200 and r.json()["released_by"] == "olivia"


def test_trader_still_releases_own_and_automatic_switches(alice, api):
    d = deployment(alice)
    own = risk.killswitch_trip(scope="deployment", target=d, reason="pause it", actor=alice)
    assert api(alice).post(f"/api/v1/risk/kill-switches/{own.pk}/release/", {"reason": "ok"},
                           format="json").status_code == 200
    auto = risk.killswitch_trip(scope="deployment", target=d, reason="daily loss", automatic=True)
    assert api(alice).post(f"/api/v1/risk/kill-switches/{auto.pk}/release/", {"reason": "ok"},
                           format="json").status_code == 200


def test_trader_cannot_revoke_an_operators_override(alice, olivia, api):
    from apps.risk.models import RiskOverride

    d = deployment(alice)
    o = risk.override_create(scope="deployment", target=d, limit="open_positions_max", value=1,
                             reason="too many positions", actor=olivia)
    r = api(alice).post(f"/api/v1/risk/overrides/{o.pk}/revoke/", {"reason": "mine"}, format="json")
    assert r.status_code == 403, r.content
    assert "olivia" in r.json()["error"]["message"]
    assert RiskOverride.objects.get(pk=o.pk).active
    own = risk.override_create(scope="deployment", target=d, limit="leverage_max", value=1, reason="x", actor=alice)
    assert api(alice).post(f"/api/v1/risk/overrides/{own.pk}/revoke/", {"reason": "ok"},
                           format="json").status_code == 200
    assert api(olivia).post(f"/api/v1/risk/overrides/{o.pk}/revoke/", {"reason": "ok"},
                            format="json").status_code == 200


def test_operator_tripping_an_already_tripped_scope_takes_the_switch_over(alice, olivia, api):
    d = deployment(alice)
    own = risk.killswitch_trip(scope="deployment", target=d, reason="pause it", actor=alice)
    same = risk.killswitch_trip(scope="deployment", target=d, reason="incident 42", actor=olivia)
    assert same.pk == own.pk and same.tripped_by == olivia
    r = api(alice).post(f"/api/v1/risk/kill-switches/{own.pk}/release/", {"reason": "mine"}, format="json")
    assert r.status_code == 403, r.content
    assert KillSwitch.objects.get(pk=own.pk).active
