"""API under /api/v1/risk/: the same services, reasons required, scopes private to whoever may
see them (another user's deployment is answered like a missing one)."""
from __future__ import annotations

import pytest

from apps.audit.models import AuditEvent
from apps.risk.models import KillSwitch, RiskOverride, RiskProfile

from .conftest import hold

pytestmark = pytest.mark.usefixtures("no_limits")


def test_profiles_list_global_and_own_scopes_only(api, alice, bob, dep, make_deployment):
    bobs = make_deployment(bob, symbol="ETH/USD")
    r = api(bob).post("/api/v1/risk/profiles/", {"scope": "deployment", "target": bobs.pk, "reason": "mine",
                                                 "changes": {"leverage_max": "0.5"}}, format="json")
    assert r.status_code == 201 and r.json()["leverage_max"] == "0.5000"
    keys = {p["target_key"] for p in api(alice).get("/api/v1/risk/profiles/").json()["results"]}
    assert keys == {"global"}
    r = api(alice).post("/api/v1/risk/profiles/", {"scope": "deployment", "target": bobs.pk, "reason": "x",
                                                   "changes": {"leverage_max": "9"}}, format="json")
    assert r.status_code == 400 and "No deployment with id" in r.json()["error"]["message"]


def test_patch_a_profile_needs_a_reason_and_is_audited(api, olivia, db):
    g = RiskProfile.objects.get(target_key="global")
    r = api(olivia).patch(f"/api/v1/risk/profiles/{g.pk}/", {"changes": {"daily_loss_pct": "3"}}, format="json")
    assert r.status_code == 400 and "reason" in r.json()["error"]["message"]
    r = api(olivia).patch(f"/api/v1/risk/profiles/{g.pk}/", {"changes": {"daily_loss_pct": "3"}, "reason": "calm"},
                          format="json")
    assert r.status_code == 200 and r.json()["daily_loss_pct"] == "3.0000"
    assert AuditEvent.objects.get(action="risk.profile.updated").changes == {"daily_loss_pct": [None, "3"]}


def test_a_trader_may_not_change_global_limits(api, alice, db):
    g = RiskProfile.objects.get(target_key="global")
    r = api(alice).patch(f"/api/v1/risk/profiles/{g.pk}/", {"changes": {"daily_loss_pct": "50"}, "reason": "x"},
                         format="json")
    assert r.status_code == 403 and "operators and admins manage global risk" in r.json()["error"]["message"]


def test_trip_and_release_the_kill_switch_through_the_api(api, alice, victor, dep):
    assert api(victor).post("/api/v1/risk/kill-switches/", {"scope": "global", "reason": "x"},
                            format="json").status_code == 403
    r = api(alice).post("/api/v1/risk/kill-switches/", {"scope": "deployment", "target": dep.pk, "reason": "halt"},
                        format="json")
    assert r.status_code == 201 and r.json()["active"] is True and r.json()["scope_label"].startswith("Deployment")
    pk = r.json()["id"]
    assert api(alice).post(f"/api/v1/risk/kill-switches/{pk}/release/", {}, format="json").status_code == 400
    r = api(alice).post(f"/api/v1/risk/kill-switches/{pk}/release/", {"reason": "fine"}, format="json")
    assert r.status_code == 200 and r.json()["active"] is False and r.json()["release_reason"] == "fine"
    assert not KillSwitch.objects.get(pk=pk).active


def test_override_create_and_revoke(api, alice, dep):
    r = api(alice).post("/api/v1/risk/overrides/", {"scope": "deployment", "target": dep.pk, "limit":
                                                    "risk_per_trade_pct", "value": "0.5", "reason": "careful"},
                        format="json")
    assert r.status_code == 400 and "override_hours" in r.json()["error"]["message"]  # no default configured
    r = api(alice).post("/api/v1/risk/overrides/", {"scope": "deployment", "target": dep.pk, "limit":
                                                    "risk_per_trade_pct", "value": "0.5", "reason": "careful",
                                                    "expires_at": "2099-01-01T00:00:00Z"}, format="json")
    assert r.status_code == 201 and r.json()["active"]
    r = api(alice).post(f"/api/v1/risk/overrides/{r.json()['id']}/revoke/", {"reason": "done"}, format="json")
    assert r.status_code == 200 and r.json()["active"] is False
    assert RiskOverride.objects.get().revoke_reason == "done"


def test_overview_shows_limits_and_usage_per_scope(api, alice, bob, dep):
    from apps.risk import services
    services.profile_update(scope="account", target=dep.account, changes={"total_exposure_pct": "50"}, reason="t")
    hold(dep, amount="25", price="100")
    data = api(alice).get(f"/api/v1/risk/overview/?deployment={dep.pk}").json()
    assert [s["scope"] for s in data["scopes"]] == ["global", "user", "account", "deployment"]
    account = data["scopes"][2]
    total = next(lim for lim in account["limits"] if lim["limit"] == "total_exposure_pct")
    assert total["value"] == 50 and total["used"] == 25 and total["ratio"] == 0.5
    assert api(bob).get(f"/api/v1/risk/overview/?deployment={dep.pk}").status_code == 400
    assert api(alice).get("/api/v1/risk/overview/?deployment=abc").status_code == 400
