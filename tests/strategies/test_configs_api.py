"""Strategy library and configuration endpoints."""
from __future__ import annotations

from apps.audit.models import AuditEvent
from apps.strategies.models import StrategyConfig
from tests.permission_suite import check_private_to_owner


def test_library_lists_every_strategy_with_its_parameter_schema(api, alice):
    strategies = {s["key"]: s for s in api(alice).get("/api/v1/strategies/").json()}
    assert {"sma_cross", "ema_cross", "rsi_reversion", "bollinger_breakout", "macd", "volume_breakout", "htf_sweep",
            "donchian_breakout"} <= set(strategies)
    fast = next(p for p in strategies["sma_cross"]["params"] if p["name"] == "fast")
    assert fast["type"] == "int" and fast["low"] >= 1 and fast["default"] < fast["high"]
    assert api(alice).get("/api/v1/strategies/nope/").status_code == 404


def test_create_validates_parameters_and_fills_defaults(api, alice, market):
    bad = api(alice).post("/api/v1/strategy-configs/", {"name": "x", "strategy_key": "sma_cross", "market": market.pk,
                                                        "timeframe": "1m", "parameters": {"fast": 0}}, format="json")
    assert bad.status_code == 400 and "fast" in bad.json()["error"]["message"]
    good = api(alice).post("/api/v1/strategy-configs/", {"name": "x", "strategy_key": "sma_cross", "market": market.pk,
                                                         "timeframe": "1m", "parameters": {"fast": 7}}, format="json")
    assert good.status_code == 201, good.json()
    body = good.json()
    assert body["parameters"]["fast"] == 7 and "slow" in body["parameters"] and body["stage"] == "discovery"
    assert AuditEvent.objects.filter(action="strategies.config.created", target_id=str(body["id"])).exists()


def test_stage_cannot_be_set_through_the_config_endpoint(api, alice, market):
    body = api(alice).post("/api/v1/strategy-configs/", {"name": "x", "strategy_key": "sma_cross", "market": market.pk,
                                                         "timeframe": "1m", "stage": "live"}, format="json").json()
    assert body["stage"] == "discovery"
    api(alice).patch(f"/api/v1/strategy-configs/{body['id']}/", {"stage": "live", "notes": "n"}, format="json")
    config = StrategyConfig.objects.get(pk=body["id"])
    assert config.stage == "discovery" and config.notes == "n"


def test_configs_are_private_to_their_owner(api, alice, bob, charlie, olivia, market):
    body = api(alice).post("/api/v1/strategy-configs/", {"name": "x", "strategy_key": "sma_cross", "market": market.pk,
                                                         "timeframe": "1m"}, format="json").json()
    check_private_to_owner(api, list_url="/api/v1/strategy-configs/", obj=StrategyConfig.objects.get(pk=body["id"]),
                           owner=alice, colleague=bob, outsider=charlie, operator=olivia, patch={"notes": "hijack"})
    assert StrategyConfig.objects.get(pk=body["id"]).notes == ""
