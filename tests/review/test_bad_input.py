"""Bad input on the new write and read endpoints: a 400 naming the problem, never a 500."""
from __future__ import annotations

import pytest

from apps.strategies.models import StrategyConfig
from tests.owned_factories import deployment, strategy_config

pytestmark = pytest.mark.django_db


def _no_500(r, what):
    assert r.status_code < 500, (what, r.status_code, r.content[:400])
    return r


def test_bad_inputs_are_refused_without_500(alice, olivia, api):
    d = deployment(alice)
    cfg = strategy_config(alice)
    c, op = api(alice), api(olivia)
    for account in (2**62, -1, "abc", 0):
        r = _no_500(c.post(f"/api/v1/graduation/configs/{cfg.pk}/promote/", {"reason": "x", "account": account},
                           format="json"), ("promote account", account))
        assert r.status_code == 400
    assert StrategyConfig.objects.get(pk=cfg.pk).stage == cfg.stage
    r = _no_500(c.post(f"/api/v1/graduation/configs/{cfg.pk}/demote/", {"reason": "x", "to_stage": "nowhere"},
                       format="json"), "demote")
    assert r.status_code == 400
    for changes in ({"open_positions_max": "-1"}, {"nonsense": "1"}, {"asset_exposure_pct": "NaN"},
                    {"asset_exposure_pct": "1e400"}, {"asset_exposure_pct": "abc"}, {"open_positions_max": "1.5"},
                    {"open_positions_max": "99999999999999999999"}, {"cooldown_minutes": "-3"}):
        r = _no_500(c.post("/api/v1/risk/profiles/", {"scope": "user", "target": alice.pk, "changes": changes,
                                                      "reason": "x"}, format="json"), changes)
        assert r.status_code == 400, (changes, r.content[:300])
    for value in ("NaN", "-1", "1e400", "abc", "Infinity"):
        r = _no_500(c.post("/api/v1/risk/overrides/", {"scope": "deployment", "target": d.pk, "limit":
                                                       "open_positions_max", "value": value, "reason": "x"},
                           format="json"), value)
        assert r.status_code == 400, (value, r.content[:300])
    for q in ("deployment=abc", "deployment=99999999999", "account=-4", "deployment=0"):
        _no_500(c.get(f"/api/v1/risk/overview/?{q}"), q)
    for q in ("year=abc", "year=2024&timezone=Mars/Olympus", "year=2024&first_month=13", "year=99999"):
        r = _no_500(c.get(f"/api/v1/exports/tax/?{q}"), q)
        assert r.status_code == 400, q
    _no_500(c.get("/api/v1/exports/trades/?timezone=Nowhere/Else"), "tz")
    for doc in ([], "x", {"format": "tradepulse.config", "version": 999}, {"format": "tradepulse.config",
                "version": 1, "configs": "nope"}, {"format": "tradepulse.config", "version": 1,
                "configs": [{"name": None}], "channels": [1, 2]}):
        _no_500(c.post("/api/v1/config/import/", {"document": doc, "apply": True, "reason": "x"}, format="json"),
                ("import", doc))
    for q in ("state=bogus", "severity=bogus", "ordering=bogus"):
        _no_500(c.get(f"/api/v1/alerts/?{q}"), q)
    _no_500(c.post("/api/v1/alerts/999999/acknowledge/", {"reason": "x"}, format="json"), "ack")
    _no_500(op.patch("/api/v1/graduation/policies/1/", {"reason": "x", "min_trades": -5}, format="json"), "policy")
    for body in ({"reason": "x", "min_trades": "NaN"}, {"reason": "x", "max_drawdown": "1e400"}):
        _no_500(op.patch("/api/v1/graduation/policies/1/", body, format="json"), body)
    _no_500(c.post(f"/api/v1/trading/deployments/{d.pk}/stop/", {"reason": "x", "exit_policy": "sideways"},
                   format="json"), "exit")
    for q in ("start=abc", "end=-1", "deployment=abc", "start=99999999999999999"):
        _no_500(c.get(f"/api/v1/trading/portfolio/history/?{q}"), q)
