"""API: policies (operators edit with a reason), the pipeline actions, decisions and live requests,
each private to whoever may see the config (another user's is 404)."""
from __future__ import annotations

from apps.accounts.roles import OPERATOR
from apps.audit.models import AuditEvent
from apps.graduation.models import GraduationDecision, GraduationPolicy, LiveRequest
from apps.strategies.models import StrategyConfig
from tests.conftest import make_user

from .conftest import research


def test_everyone_reads_policies_only_operators_change_them_with_a_reason(api, alice, olivia, victor):
    policy = GraduationPolicy.objects.get(kind="promote", from_stage="validation")
    url = f"/api/v1/graduation/policies/{policy.pk}/"
    rows = api(victor).get("/api/v1/graduation/policies/").json()
    assert len(rows) == 8 and {"min_oos_sharpe", "max_live_drawdown", "automatic"} <= set(rows[0])
    assert api(alice).patch(url, {"min_trades": 1, "reason": "me"}, format="json").status_code == 403
    missing = api(olivia).patch(url, {"min_trades": 70}, format="json")
    assert missing.status_code == 400 and "reason" in missing.json()["error"]["message"]
    bad = api(olivia).patch(url, {"max_pbo": 3, "reason": "typo"}, format="json")
    assert bad.status_code == 400 and "max_pbo" in bad.json()["error"]["message"]
    ok = api(olivia).patch(url, {"min_trades": 70, "reason": "more evidence before paper"}, format="json")
    assert ok.status_code == 200 and ok.json()["min_trades"] == 70 and ok.json()["updated_by"] == "olivia"
    assert AuditEvent.objects.get(action="graduation.policy.updated").reason == "more evidence before paper"


def test_board_lists_what_you_may_see_with_evidence_and_filters(api, alice, charlie, olivia, make_config):
    mine = make_config(alice, name="mine")
    research(mine, oos_sharpe=1.1)
    theirs = make_config(charlie, name="theirs")
    cards = api(alice).get("/api/v1/graduation/configs/").json()
    assert [c["name"] for c in cards] == ["mine"]
    assert cards[0]["stage"] == "discovery" and cards[0]["evidence"]["oos_sharpe"] == 1.1
    assert cards[0]["seconds_in_stage"] >= 0
    everyone = api(olivia).get("/api/v1/graduation/configs/").json()
    assert {c["name"] for c in everyone} == {"mine", "theirs"}
    assert [c["name"] for c in api(olivia).get("/api/v1/graduation/configs/?owner=charlie").json()] == ["theirs"]
    assert api(olivia).get("/api/v1/graduation/configs/?strategy=macd").json() == []
    assert api(alice).get(f"/api/v1/graduation/configs/{theirs.pk}/").status_code == 404
    assert api(alice).get("/api/v1/graduation/configs/?stage=nowhere").status_code == 400


def test_promote_through_the_api_needs_a_reason_and_returns_the_decision(api, alice, make_config):
    config = make_config(alice)
    research(config)
    url = f"/api/v1/graduation/configs/{config.pk}/promote/"
    assert api(alice).post(url, {}, format="json").status_code == 400
    body = api(alice).post(url, {"reason": "strong out-of-sample"}, format="json").json()
    assert body["outcome"] == "promote" and body["to_stage"] == "validation" and body["actor"] == "alice"
    assert {c["name"] for c in body["criteria"]} >= {"min_trades", "min_oos_sharpe"}
    assert all(c["threshold"] is not None and "value" in c for c in body["criteria"])
    failing = api(alice).post(url, {"reason": "again"}, format="json")  # validation → paper: no paper account
    assert failing.status_code == 400 and "no paper account" in failing.json()["error"]["message"]


def test_outsiders_get_404_viewers_cannot_act(api, alice, charlie, victor, make_config):
    config = make_config(alice, stage="testnet")
    decision = GraduationDecision.objects.create(config=config, from_stage="paper", to_stage="testnet",
                                                 outcome="promote", decided_by="policy", reason="test")
    request = LiveRequest.objects.create(config=config, requested_by=alice, reason="ready")
    stranger = api(charlie)
    for action in ("promote", "demote", "retire", "request-live"):
        assert stranger.post(f"/api/v1/graduation/configs/{config.pk}/{action}/", {"reason": "x"},
                             format="json").status_code == 404
    assert stranger.get(f"/api/v1/graduation/decisions/{decision.pk}/").status_code == 404
    assert stranger.get("/api/v1/graduation/decisions/").json()["count"] == 0
    assert stranger.get(f"/api/v1/graduation/live-requests/{request.pk}/").status_code == 404
    assert stranger.post(f"/api/v1/graduation/live-requests/{request.pk}/approve/", {"reason": "x"},
                         format="json").status_code == 404
    assert api(victor).post(f"/api/v1/graduation/configs/{config.pk}/demote/", {"reason": "x"},
                            format="json").status_code in (403, 404)
    assert StrategyConfig.objects.get(pk=config.pk).stage == "testnet"
    assert api(alice).get(f"/api/v1/graduation/decisions/{decision.pk}/").status_code == 200


def test_request_live_and_four_eyes_approval_through_the_api(api, olivia, make_config):
    otto = make_user("otto", OPERATOR, is_staff=True)
    config = make_config(otto, stage="testnet")
    created = api(otto).post(f"/api/v1/graduation/configs/{config.pk}/request-live/", {"reason": "ready"},
                             format="json")
    assert created.status_code == 201 and created.json()["status"] == "pending"
    pk = created.json()["id"]
    queue = api(olivia).get("/api/v1/graduation/live-requests/?status=pending").json()["results"]
    assert [r["id"] for r in queue] == [pk]
    own = api(otto).post(f"/api/v1/graduation/live-requests/{pk}/approve/", {"reason": "mine"}, format="json")
    assert own.status_code == 403 and "Four eyes" in own.json()["error"]["message"]
    ok = api(olivia).post(f"/api/v1/graduation/live-requests/{pk}/approve/", {"reason": "checked"}, format="json")
    assert ok.status_code == 200 and ok.json()["to_stage"] == "live" and ok.json()["actor"] == "olivia"
    assert StrategyConfig.objects.get(pk=config.pk).stage == "live"


def test_decisions_filter_by_config(api, alice, make_config):
    a, b = make_config(alice, name="a"), make_config(alice, name="b")
    research(a)
    research(b)
    api(alice).post(f"/api/v1/graduation/configs/{a.pk}/promote/", {"reason": "go"}, format="json")
    api(alice).post(f"/api/v1/graduation/configs/{b.pk}/retire/", {"reason": "dup"}, format="json")
    rows = api(alice).get(f"/api/v1/graduation/decisions/?config={a.pk}").json()["results"]
    assert [(r["config"], r["outcome"]) for r in rows] == [(a.pk, "promote")]


def test_list_endpoints_keep_a_query_budget(api, alice, olivia, make_config, django_assert_max_num_queries):
    from apps.graduation import services

    for i in range(25):
        config = make_config(alice, name=f"c{i:02d}")
        research(config)
        if i % 5 == 0:
            services.config_retire(config=config, actor=alice, reason="budget")
    services.configs_evaluate_all()
    client = api(olivia)
    with django_assert_max_num_queries(25):
        cards = client.get("/api/v1/graduation/configs/").json()
    assert len(cards) == 20
    with django_assert_max_num_queries(20):
        decisions = client.get("/api/v1/graduation/decisions/?page_size=50").json()
    assert decisions["count"] == 25
    with django_assert_max_num_queries(20):
        assert client.get("/api/v1/graduation/live-requests/").status_code == 200
