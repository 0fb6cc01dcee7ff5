"""The periodic evaluation: promotion by policy, holds written only when something changes,
deployments started on promotion to paper, automatic demotion on a planted drawdown."""
from __future__ import annotations

from decimal import Decimal

import pytest

from apps.alerts.models import Alert
from apps.audit.models import AuditEvent
from apps.graduation import services
from apps.graduation.models import GraduationDecision, GraduationPolicy, LiveRequest
from apps.graduation.tasks import evaluate_all
from apps.strategies.models import StrategyConfig
from apps.trading.models import Deployment

from .conftest import active_deployment, plant_equity, research


def _policy(kind, stage):
    return GraduationPolicy.objects.get(kind=kind, from_stage=stage)


def test_promotion_by_policy_stores_every_criterion_value_and_threshold(alice, make_config, published,
                                                                        django_capture_on_commit_callbacks):
    config = make_config(alice)
    row = research(config, trades=80, oos_sharpe=1.2, max_drawdown=0.12, pbo=0.1, dsr=0.97)
    policy = _policy("promote", "discovery")
    with django_capture_on_commit_callbacks(execute=True):
        decision = services.config_evaluate(config=config)
    assert decision.outcome == "promote" and (decision.from_stage, decision.to_stage) == ("discovery", "validation")
    assert decision.decided_by == "policy" and decision.actor is None and decision.policy == policy
    assert StrategyConfig.objects.get(pk=config.pk).stage == "validation"
    stored = {c["name"]: c for c in GraduationDecision.objects.get(pk=decision.pk).criteria if c["kind"] == "promote"}
    assert set(stored) == {"min_trades", "min_oos_sharpe", "max_drawdown", "max_pbo", "min_dsr"}
    expected = {"min_trades": (80, policy.min_trades), "min_oos_sharpe": (1.2, policy.min_oos_sharpe),
                "max_drawdown": (0.12, policy.max_drawdown), "max_pbo": (0.1, policy.max_pbo),
                "min_dsr": (0.97, policy.min_dsr)}
    for name, (value, threshold) in expected.items():
        assert (stored[name]["value"], stored[name]["threshold"], stored[name]["passed"]) == (value, threshold, True)
    assert decision.evidence["research"]["id"] == row.pk
    event = AuditEvent.objects.get(action="graduation.decision.promote", target_id=str(config.pk))
    assert event.changes == {"stage": ["discovery", "validation"]} and event.reason == decision.reason
    messages = [m for _, m in published if m["type"] == "graduation.decision"]
    assert messages and messages[-1]["data"]["id"] == decision.pk
    assert messages[-1]["data"]["criteria"][0]["threshold"] is not None


def test_a_failing_criterion_holds_and_an_unchanged_evaluation_writes_nothing(alice, make_config):
    config = make_config(alice)
    research(config, oos_sharpe=0.2)  # below the default minimum
    first = services.config_evaluate(config=config)
    assert first.outcome == "hold" and first.to_stage == "discovery"
    assert "Out-of-sample Sharpe 0.2 <" in first.reason
    failing = [c for c in first.criteria if c["passed"] is False]
    assert [c["name"] for c in failing] == ["min_oos_sharpe"]
    assert services.config_evaluate(config=config) is None  # nothing changed: no new row
    assert GraduationDecision.objects.filter(config=config).count() == 1


def test_promotion_to_paper_starts_a_deployment_on_the_owners_paper_account(alice, make_config, paper_account):
    config = make_config(alice, stage="validation")
    research(config)
    account = paper_account(alice, balance="10000")
    decision = services.config_evaluate(config=config)
    assert decision.outcome == "promote" and decision.to_stage == "paper"
    deployment = Deployment.objects.get(config=config)
    assert decision.deployment == deployment and deployment.account == account and deployment.state == "active"
    fraction = Decimal(str(_policy("promote", "validation").deployment_capital_fraction))
    assert deployment.capital == (Decimal("10000") * fraction).quantize(Decimal("0.00000001"))


def test_promotion_to_paper_without_a_paper_account_is_refused_clearly(alice, make_config, paper_account):
    config = make_config(alice, stage="validation")
    research(config)
    decision = services.config_evaluate(config=config)
    assert decision.outcome == "hold" and StrategyConfig.objects.get(pk=config.pk).stage == "validation"
    assert "alice has no paper account on Test files" in decision.reason
    assert not Deployment.objects.filter(config=config).exists()
    alert = Alert.objects.get(source="graduation", target_id=str(config.pk))
    assert alert.title == "trend: promotion to paper refused" and "no paper account" in alert.message
    assert alert.owner == alice and alert.resolved_at is None
    paper_account(alice)  # the owner makes one: the next evaluation promotes and the alert resolves
    assert services.config_evaluate(config=config).outcome == "promote"
    alert.refresh_from_db()
    assert alert.resolved_at is not None


def test_several_paper_accounts_without_a_named_one_are_refused(alice, make_config, paper_account, olivia):
    config = make_config(alice, stage="validation")
    research(config)
    paper_account(alice, name="one")
    paper_account(alice, name="two")
    assert "several paper accounts" in services.config_evaluate(config=config).reason
    services.policy_update(policy=_policy("promote", "validation"), actor=olivia, reason="use the 'two' accounts",
                           deployment_account_name="two")
    decision = services.config_evaluate(config=config)
    assert decision.outcome == "promote" and decision.deployment.account.name == "two"


def test_planted_drawdown_demotes_pauses_the_deployment_and_raises_an_alert(alice, make_config, paper_account,
                                                                            published,
                                                                            django_capture_on_commit_callbacks):
    config = make_config(alice, stage="paper")
    deployment = active_deployment(config, paper_account(alice))
    plant_equity(deployment, [1000, 1100, 1050, 800])  # 300/1100 = 27 % below the high
    threshold = _policy("demote", "paper").max_live_drawdown
    assert threshold < 0.27
    with django_capture_on_commit_callbacks(execute=True):
        decision = services.config_evaluate(config=config)
    assert decision.outcome == "demote" and (decision.from_stage, decision.to_stage) == ("paper", "validation")
    [dd] = [c for c in decision.criteria if c["name"] == "max_live_drawdown" and c["kind"] == "demote"]
    assert dd["passed"] is False and dd["value"] == pytest.approx(300 / 1100, abs=1e-6) and dd["threshold"] == threshold
    deployment.refresh_from_db()
    assert deployment.state == "paused" and "demoted by graduation policy" in deployment.state_reason
    assert "Drawdown in stage" in deployment.state_reason
    assert decision.deployment == deployment and decision.evidence["paused"] == [deployment.pk]
    assert StrategyConfig.objects.get(pk=config.pk).stage == "validation"
    alert = Alert.objects.get(source="graduation", key=f"graduation-demoted:config-{config.pk}")
    assert alert.title == f"{config.name} demoted from paper to validation" and alert.severity == "warning"
    assert "Drawdown in stage" in alert.message and alert.owner == alice
    assert alert.context["paused_deployments"] == [deployment.pk]
    assert any(m["type"] == "graduation.decision" and m["data"]["outcome"] == "demote" for _, m in published)


def test_no_demotion_while_the_drawdown_stays_within_the_policy(alice, make_config, paper_account):
    config = make_config(alice, stage="paper")
    plant_equity(active_deployment(config, paper_account(alice)), [1000, 1100, 1080])
    decision = services.config_evaluate(config=config)
    assert decision.outcome == "hold" and StrategyConfig.objects.get(pk=config.pk).stage == "paper"


def test_testnet_config_passing_its_policy_files_a_live_request_instead_of_going_live(alice, make_config, olivia):
    config = make_config(alice, stage="testnet")
    services.policy_update(policy=_policy("promote", "testnet"), actor=olivia, reason="test: days only",
                           min_days_in_stage=0, min_trades_in_stage=None, max_tracking_error=None,
                           max_live_drawdown=None)
    decision = services.config_evaluate(config=config)
    assert decision.outcome == "hold" and StrategyConfig.objects.get(pk=config.pk).stage == "testnet"
    request = LiveRequest.objects.get(config=config)
    assert request.status == "pending" and request.requested_by is None
    assert f"live request #{request.pk}" in decision.reason


def test_the_beat_task_evaluates_every_config_in_an_automatic_stage(alice, bob, make_config):
    good, weak = make_config(alice, name="good"), make_config(bob, name="weak")
    research(good)
    research(weak, trades=3)
    retired = make_config(alice, stage="retired", name="old")
    research(retired)
    assert evaluate_all() == 2
    assert StrategyConfig.objects.get(pk=good.pk).stage == "validation"
    assert StrategyConfig.objects.get(pk=weak.pk).stage == "discovery"
    assert not GraduationDecision.objects.filter(config=retired).exists()
    event = AuditEvent.objects.get(action="graduation.decision.promote", target_id=str(good.pk))
    assert event.actor_label == "system:graduation"


def test_a_manual_policy_is_not_applied_by_the_evaluation(alice, make_config, olivia):
    config = make_config(alice)
    research(config)
    services.policy_update(policy=_policy("promote", "discovery"), actor=olivia, reason="people decide this one",
                           automatic=False)
    assert services.config_evaluate(config=config) is None
    assert StrategyConfig.objects.get(pk=config.pk).stage == "discovery"


def test_values_drifting_without_a_verdict_changing_write_no_new_hold(alice, make_config, olivia):
    from datetime import timedelta

    config = make_config(alice, stage="testnet")
    services.policy_update(policy=_policy("promote", "testnet"), actor=olivia, reason="test: days only",
                           min_days_in_stage=30, min_trades_in_stage=None, max_tracking_error=None,
                           max_live_drawdown=None)
    first = services.config_evaluate(config=config, now=config.created_at + timedelta(days=1))
    assert first.outcome == "hold" and first.criteria[-1]["value"] == pytest.approx(1, abs=0.01)
    assert services.config_evaluate(config=config, now=config.created_at + timedelta(days=2)) is None
    assert not LiveRequest.objects.exists()
    passed = services.config_evaluate(config=config, now=config.created_at + timedelta(days=31))
    assert passed.outcome == "hold" and "live request" in passed.reason  # the verdict changed: a new row
