"""Configuration export/import: a round trip to another user, preview before apply, no secrets
exported, conflicts skipped with the reason, bad documents refused naming the problem."""
from __future__ import annotations

import copy
from decimal import Decimal

from apps.alerts.models import Channel
from apps.alerts.services import channel_create
from apps.audit.models import AuditEvent
from apps.ops.configio import config_import
from apps.risk.models import RiskProfile, Scope, target_key
from apps.risk.services import profile_update
from apps.strategies.models import StrategyConfig
from tests.alerts.receiver import receiver  # noqa: F401 - fixture
from tests.owned_factories import strategy_config


def _setup(alice, receiver_base):
    config = strategy_config(alice)
    profile_update(scope=Scope.USER, target=alice, changes={"risk_per_trade_pct": "1.5", "open_positions_max": 3},
                   reason="my limits", actor=alice)
    channel_create(owner=alice, name="mail", kind="email", min_severity="error")
    channel_create(owner=alice, name="hook", kind="webhook", url=f"{receiver_base}/hooks/SECRET-PATH-123")
    return config


def test_round_trip_to_another_user_with_preview_then_apply(api, alice, bob, receiver):  # noqa: F811
    config = _setup(alice, receiver.base)
    exported = api(alice).get("/api/v1/config/export/")
    assert exported.status_code == 200
    document = exported.json()
    assert document["format"] == "tradepulse.config" and document["version"] == 1
    assert "SECRET-PATH-123" not in exported.content.decode()
    assert document["risk_profile"] == {"risk_per_trade_pct": "1.5000", "open_positions_max": 3}

    preview = api(bob).post("/api/v1/config/import/", {"document": document}, format="json").json()
    assert preview["applied"] is False
    actions = {(p["section"], p["name"]): p["action"] for p in preview["plan"]}
    assert actions == {("strategy_configs", config.name): "create", ("risk_profile", "your limits"): "update",
                       ("alert_channels", "hook"): "skip", ("alert_channels", "mail"): "create"}
    assert not StrategyConfig.objects.filter(owner=bob).exists()  # a preview writes nothing

    applied = api(bob).post("/api/v1/config/import/", {"document": document, "apply": True, "reason": "copy"},
                            format="json").json()
    assert applied["applied"] is True and applied["counts"] == {"create": 2, "update": 1, "skip": 1}
    copied = StrategyConfig.objects.get(owner=bob)
    assert (copied.name, copied.parameters, copied.market_id, copied.timeframe) == (
        config.name, config.parameters, config.market_id, config.timeframe)
    assert copied.execution_settings() == config.execution_settings() and copied.provenance == {"imported": True}
    limits = RiskProfile.objects.get(target_key=target_key(Scope.USER, bob.pk))
    assert limits.risk_per_trade_pct == Decimal("1.5") and limits.open_positions_max == 3
    assert list(Channel.objects.filter(owner=bob).values_list("name", "min_severity")) == [("mail", "error")]
    assert AuditEvent.objects.filter(action="ops.config.imported", actor_id=bob.pk).exists()

    again = config_import(user=bob, document=document)
    assert again["counts"] == {"unchanged": 3, "skip": 1}


def test_a_changed_config_is_skipped_with_the_reason(alice, receiver):  # noqa: F811
    config = _setup(alice, receiver.base)
    from apps.ops.configio import config_export

    document = config_export(user=alice)
    changed = copy.deepcopy(document)
    changed["strategy_configs"][0]["parameters"]["fast"] = 12
    changed["risk_profile"]["risk_per_trade_pct"] = "2"
    result = config_import(user=alice, document=changed, apply=True)
    step = next(p for p in result["plan"] if p["section"] == "strategy_configs")
    assert step["action"] == "skip" and "different parameters" in step["note"]
    assert StrategyConfig.objects.get(pk=config.pk).parameters["fast"] == 10
    risk = next(p for p in result["plan"] if p["section"] == "risk_profile")
    assert risk["changes"] == {"risk_per_trade_pct": ["1.5000", "2"]}


def test_bad_documents_are_refused_naming_the_problem_and_nothing_is_stored(api, alice):
    client = api(alice)
    r = client.post("/api/v1/config/import/", {"document": {"format": "other"}}, format="json")
    assert r.status_code == 400 and 'format' in r.json()["error"]["message"]
    r = client.post("/api/v1/config/import/", {"document": {"format": "tradepulse.config", "version": 9}}, format="json")
    assert r.status_code == 400 and "Unsupported version 9" in r.json()["error"]["message"]
    document = {"format": "tradepulse.config", "version": 1,
                "strategy_configs": [{"name": "x", "strategy_key": "sma_cross", "exchange": "nowhere",
                                      "symbol": "ABC/XYZ", "timeframe": "1h"}],
                "alert_channels": [{"name": "m", "kind": "email", "email": "ops@example.test"}]}
    preview = client.post("/api/v1/config/import/", {"document": document}, format="json").json()
    assert preview["counts"] == {"error": 1, "create": 1}
    assert "ABC/XYZ on nowhere is not known here" in preview["plan"][0]["note"]
    refused = client.post("/api/v1/config/import/", {"document": document, "apply": True}, format="json")
    assert refused.status_code == 400 and "is not known here" in refused.json()["error"]["message"]
    assert not Channel.objects.exists()  # all or nothing
