"""Review probes (attacker and new-user view) of trading, risk, alerts, graduation and ops."""
from __future__ import annotations

from decimal import Decimal

import pytest

from apps.audit.models import AuditEvent
from tests.owned_factories import alert_channel, deployment, exchange_account, strategy_config

pytestmark = pytest.mark.django_db

R = {"reason": "review probe"}


def test_trader_cannot_trip_global_kill_switch(alice, api):
    r = api(alice).post("/api/v1/risk/kill-switches/", {"scope": "global", "reason": "x"}, format="json")
    assert r.status_code in (400, 403), r.content


def test_trader_cannot_edit_global_profile(alice, api):
    r = api(alice).post("/api/v1/risk/profiles/", {"scope": "global", "changes": {"open_positions_max": 999},
                                                   "reason": "x"}, format="json")
    assert r.status_code in (400, 403), r.content
    lst = api(alice).get("/api/v1/risk/profiles/?scope=global").json()
    rows = lst["results"] if isinstance(lst, dict) else lst
    if rows:
        r = api(alice).patch(f"/api/v1/risk/profiles/{rows[0]['id']}/", {"changes": {"open_positions_max": 999},
                                                                         "reason": "x"}, format="json")
        assert r.status_code in (400, 403), r.content


def test_trader_cannot_edit_graduation_policy(alice, api):
    rows = api(alice).get("/api/v1/graduation/policies/").json()
    r = api(alice).patch(f"/api/v1/graduation/policies/{rows[0]['id']}/", {"reason": "x", "automatic": True},
                         format="json")
    assert r.status_code == 403, r.content


def test_other_users_trading_objects_are_404(alice, bob, api):
    d = deployment(bob)
    for url in (f"/api/v1/trading/deployments/{d.pk}/", f"/api/v1/trading/accounts/{d.account_id}/",
                f"/api/v1/trading/deployments/{d.pk}/performance/"):
        assert api(alice).get(url).status_code == 404, url
    for verb in ("pause", "stop", "activate", "flatten", "reconcile"):
        r = api(alice).post(f"/api/v1/trading/deployments/{d.pk}/{verb}/", R, format="json")
        assert r.status_code == 404, (verb, r.status_code)
    assert api(alice).get(f"/trading/deployments/{d.pk}/").status_code in (404, 302)


def test_risk_on_other_users_targets(alice, bob, api):
    d = deployment(bob)
    for scope, target in (("deployment", d.pk), ("account", d.account_id), ("user", bob.pk)):
        r = api(alice).post("/api/v1/risk/kill-switches/", {"scope": scope, "target": target, "reason": "x"},
                            format="json")
        assert r.status_code in (400, 404), (scope, r.content)
        r = api(alice).post("/api/v1/risk/overrides/", {"scope": scope, "target": target, "limit":
                                                        "open_positions_max", "value": "100", "reason": "x"},
                            format="json")
        assert r.status_code in (400, 404), (scope, r.content)
    assert api(alice).get(f"/api/v1/risk/overview/?deployment={d.pk}").status_code in (400, 404)


def test_deploy_others_config_or_account(alice, bob, api):
    mine = exchange_account(alice)
    theirs = strategy_config(bob)
    r = api(alice).post("/api/v1/trading/deployments/", {"config": theirs.pk, "account": mine.pk, "capital": "10"},
                        format="json")
    assert r.status_code == 400, r.content


def test_channel_secret_never_returned_or_audited(alice, bob, api, settings):
    settings.TRADEPULSE_WEBHOOK_ALLOW_PRIVATE = True
    url = "http://127.0.0.1:9/secret-path-XYZ123"
    r = api(alice).post("/api/v1/alert-channels/", {"name": "hook", "kind": "webhook", "url": url}, format="json")
    assert r.status_code == 201, r.content
    assert "secret-path-XYZ123" not in r.content.decode()
    cid = r.json()["id"]
    assert "secret-path-XYZ123" not in api(alice).get(f"/api/v1/alert-channels/{cid}/").content.decode()
    assert api(bob).get(f"/api/v1/alert-channels/{cid}/").status_code == 404
    assert api(bob).post(f"/api/v1/alert-channels/{cid}/test/").status_code == 404
    r = api(alice).patch(f"/api/v1/alert-channels/{cid}/", {"url": "http://127.0.0.1:9/NEWSECRET9"},
                         format="json")
    assert r.status_code == 200 and "NEWSECRET9" not in r.content.decode()
    api(alice).delete(f"/api/v1/alert-channels/{cid}/")
    for e in AuditEvent.objects.all():
        text = repr(e.__dict__)
        assert "secret-path-XYZ123" not in text and "NEWSECRET9" not in text, e.action
    page = api(alice).get("/alerts/channels/").content.decode()
    assert "secret-path" not in page


def test_metrics_and_backups_need_operator(alice, victor, olivia, api):
    assert api().get("/metrics").status_code in (401, 403)
    assert api(alice).get("/metrics").status_code in (401, 403)
    assert api(olivia).get("/metrics").status_code == 200
    assert api(alice).get("/api/v1/backups/").status_code == 403
    assert api(alice).post("/api/v1/backups/").status_code == 403
    assert api(victor).get("/operations/backups/").status_code in (403, 404, 302)


def test_viewer_cannot_act(victor, api):
    r = api(victor).post("/api/v1/risk/kill-switches/", {"scope": "user", "target": victor.pk, "reason": "x"},
                         format="json")
    assert r.status_code in (400, 403), r.content
    r = api(victor).post("/api/v1/alert-channels/", {"name": "m", "kind": "email", "email": "a@b.test"},
                         format="json")
    assert r.status_code == 403, r.content


@pytest.mark.parametrize("capital", ["-5", "0", "NaN", "Infinity", "1e40", "abc", ""])
def test_bad_capital_is_400(alice, api, capital):
    acc = exchange_account(alice)
    cfg = strategy_config(alice)
    r = api(alice).post("/api/v1/trading/deployments/", {"config": cfg.pk, "account": acc.pk, "capital": capital},
                        format="json")
    assert r.status_code == 400, (capital, r.status_code, r.content[:300])


def test_wrong_state_and_reason_bounds(alice, api):
    d = deployment(alice)
    c = api(alice)
    assert c.post(f"/api/v1/trading/deployments/{d.pk}/stop/", R, format="json").status_code == 200
    r = c.post(f"/api/v1/trading/deployments/{d.pk}/pause/", R, format="json")
    assert r.status_code == 400, (r.status_code, r.content[:300])
    r = c.post(f"/api/v1/trading/deployments/{d.pk}/activate/", R, format="json")
    assert r.status_code == 400, (r.status_code, r.content[:300])
    r = c.post(f"/api/v1/trading/deployments/{d.pk}/stop/", R, format="json")
    assert r.status_code == 400, (r.status_code, r.content[:300])
    for reason in ("", "   ", "x" * 10000):
        r = c.post("/api/v1/risk/kill-switches/", {"scope": "user", "target": alice.pk, "reason": reason},
                   format="json")
        assert r.status_code == 400, (len(reason), r.status_code, r.content[:300])
