"""People move configs: promote, demote, retire with a required reason; going live needs a second
person holding graduation.approve_live (four-eyes). Everything audited."""
from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from apps.accounts.roles import OPERATOR
from apps.audit.models import AuditEvent
from apps.graduation import services
from apps.graduation.models import GraduationDecision, LiveRequest
from apps.strategies.models import StrategyConfig
from tests.conftest import make_user

from .conftest import active_deployment, research


def _stage(config):
    return StrategyConfig.objects.get(pk=config.pk).stage


def test_a_reason_is_required(alice, make_config):
    config = make_config(alice)
    research(config)
    for fn in (services.config_promote, services.config_demote, services.config_retire, services.live_request_create):
        with pytest.raises(ValidationError, match="Say why"):
            fn(config=config, actor=alice, reason="  ")
    assert _stage(config) == "discovery" and not GraduationDecision.objects.exists()


def test_manual_promotion_is_held_against_the_policy_unless_overridden(alice, make_config):
    config = make_config(alice)
    research(config, trades=5)
    with pytest.raises(ValidationError, match=r"Trades \(research evidence\) 5 <"):
        services.config_promote(config=config, actor=alice, reason="looks fine")
    assert _stage(config) == "discovery"
    decision = services.config_promote(config=config, actor=alice, reason="few trades but a known regime",
                                       override=True)
    assert decision.overridden and decision.decided_by == "person" and decision.actor == alice
    assert [c["name"] for c in decision.criteria if c["passed"] is False] == ["min_trades"]
    assert _stage(config) == "validation"
    event = AuditEvent.objects.get(action="graduation.decision.promote", target_id=str(config.pk))
    assert event.actor_id == alice.pk and event.reason == "few trades but a known regime"
    assert event.metadata["overridden"] is True


def test_promotion_to_live_directly_is_refused(alice, make_config):
    config = make_config(alice, stage="testnet")
    with pytest.raises(ValidationError, match="second person"):
        services.config_promote(config=config, actor=alice, reason="go", override=True)


def test_operator_demotes_and_retires_anyones_config_and_deployments_pause(alice, olivia, make_config, paper_account):
    config = make_config(alice, stage="paper")
    deployment = active_deployment(config, paper_account(alice))
    decision = services.config_demote(config=config, actor=olivia, reason="venue incident")
    assert (decision.from_stage, decision.to_stage, decision.actor) == ("paper", "validation", olivia)
    deployment.refresh_from_db()
    assert deployment.state == "paused" and "venue incident" in deployment.state_reason
    retired = services.config_retire(config=config, actor=olivia, reason="strategy abandoned")
    assert retired.outcome == "retire" and _stage(config) == "retired"


def test_a_colleague_with_a_view_share_cannot_move_the_config(alice, bob, make_config):
    from apps.accounts.services import object_share

    config = make_config(alice)
    object_share(obj=config, with_user=bob, actions=("view",), reason="test")
    with pytest.raises(PermissionDenied):
        services.config_promote(config=config, actor=bob, reason="mine now", override=True)
    with pytest.raises(PermissionDenied):
        services.config_retire(config=config, actor=bob, reason="no")
    assert _stage(config) == "discovery"


def test_four_eyes_the_requester_cannot_approve_their_own_live_request(make_config, olivia):
    otto = make_user("otto", OPERATOR, is_staff=True)  # an operator who owns a config and may approve
    config = make_config(otto, stage="testnet")
    request = services.live_request_create(config=config, actor=otto, reason="30 days clean on testnet")
    with pytest.raises(PermissionDenied, match="Four eyes"):
        services.live_request_approve(request=request, actor=otto, reason="I checked it myself")
    assert _stage(config) == "testnet" and LiveRequest.objects.get(pk=request.pk).status == "pending"
    decision = services.live_request_approve(request=request, actor=olivia, reason="fills match the replay")
    assert (decision.from_stage, decision.to_stage, decision.actor) == ("testnet", "live", olivia)
    assert _stage(config) == "live"
    request.refresh_from_db()
    assert (request.status, request.decided_by, request.decision) == ("approved", olivia, decision)
    assert AuditEvent.objects.filter(action="graduation.live_request.approved", actor_id=olivia.pk).exists()


def test_approving_needs_the_approve_live_permission(alice, bob, make_config):
    from apps.accounts.services import object_share

    config = make_config(alice, stage="testnet")
    request = services.live_request_create(config=config, actor=alice, reason="ready")
    object_share(obj=config, with_user=bob, actions=("view",), reason="review")
    with pytest.raises(PermissionDenied, match="approve_live"):
        services.live_request_approve(request=request, actor=bob, reason="looks good")
    assert _stage(config) == "testnet"


def test_reject_keeps_testnet_and_a_second_request_waits_for_the_first(alice, olivia, make_config):
    config = make_config(alice, stage="testnet")
    request = services.live_request_create(config=config, actor=alice, reason="ready")
    with pytest.raises(ValidationError, match="already waiting"):
        services.live_request_create(config=config, actor=alice, reason="again")
    services.live_request_reject(request=request, actor=olivia, reason="tracking error too high")
    assert _stage(config) == "testnet" and LiveRequest.objects.get(pk=request.pk).status == "rejected"
    with pytest.raises(ValidationError, match="already rejected"):
        services.live_request_approve(request=request, actor=olivia, reason="changed my mind")


def test_operators_hold_approve_live_by_default_and_traders_do_not(alice, olivia):
    assert olivia.has_perm("graduation.approve_live")
    assert not alice.has_perm("graduation.approve_live")


def test_policy_changes_are_for_operators_with_a_reason_and_audited(alice, olivia):
    from apps.graduation.models import GraduationPolicy

    policy = GraduationPolicy.objects.get(kind="promote", from_stage="discovery")
    with pytest.raises(PermissionDenied):
        services.policy_update(policy=policy, actor=alice, reason="mine", min_trades=1)
    with pytest.raises(ValidationError):
        services.policy_update(policy=policy, actor=olivia, reason="bad", max_pbo=1.5)
    services.policy_update(policy=policy, actor=olivia, reason="more trades before validation", min_trades=60)
    policy.refresh_from_db()
    assert (policy.min_trades, policy.updated_by, policy.reason) == (60, olivia, "more trades before validation")
    event = AuditEvent.objects.get(action="graduation.policy.updated")
    assert event.changes["min_trades"][1] == 60 and event.reason == "more trades before validation"
