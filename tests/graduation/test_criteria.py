"""Each criterion passing and failing, measured from stored rows (evidence, snapshots, decisions)
and held against a policy row: no threshold in code."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.graduation import criteria as crit
from apps.graduation.models import GraduationPolicy
from apps.graduation.selectors import config_measures

from .conftest import active_deployment, plant_equity, research


def _policy(**thresholds) -> GraduationPolicy:
    """An unsaved promotion policy setting only these thresholds."""
    return GraduationPolicy(kind="promote", from_stage="discovery", to_stage="validation", **thresholds)


RESEARCH_CASES = [
    # criterion, threshold, evidence figures that pass, that fail
    ("min_trades", 50, {"trades": 50}, {"trades": 49}),
    ("min_oos_sharpe", 0.8, {"oos_sharpe": 0.81}, {"oos_sharpe": 0.79}),
    ("max_drawdown", 0.25, {"max_drawdown": 0.25}, {"max_drawdown": 0.26}),
    ("max_pbo", 0.3, {"pbo": 0.29}, {"pbo": 0.31}),
    ("min_dsr", 0.9, {"dsr": 0.95}, {"dsr": 0.5}),
]


@pytest.mark.parametrize("name, threshold, good, bad", RESEARCH_CASES, ids=[c[0] for c in RESEARCH_CASES])
def test_research_criterion_passes_and_fails_on_the_evidence_row(name, threshold, good, bad, alice, make_config):
    passing, failing = make_config(alice, name="good"), make_config(alice, name="bad")
    research(passing, **good)
    research(failing, **bad)
    policy = _policy(**{name: threshold})
    [ok] = crit.hold_against(policy, config_measures(passing))
    [ko] = crit.hold_against(policy, config_measures(failing))
    assert (ok["name"], ok["threshold"], ok["passed"]) == (name, threshold, True)
    assert ok["value"] == next(iter(good.values()))
    assert (ko["passed"], ko["value"]) == (False, next(iter(bad.values())))
    assert crit.verdict(policy, [ok]) is True and crit.verdict(policy, [ko]) is False
    assert ok["source"].startswith("Training: walk-forward out-of-sample evidence #")


def test_missing_research_evidence_is_not_measured_and_never_promotes(alice, make_config):
    config = make_config(alice)
    policy = _policy(min_trades=1, min_oos_sharpe=0.0)
    rows = crit.hold_against(policy, config_measures(config))
    assert [r["passed"] for r in rows] == [None, None]
    assert all(r["note"] == "no training or backtest evidence" for r in rows)
    assert crit.verdict(policy, rows) is False


def test_a_backtest_row_has_no_oos_sharpe_dsr_or_pbo(alice, make_config):
    from datetime import UTC, datetime

    from apps.strategies.services import config_evidence_record

    config = make_config(alice)
    config_evidence_record(config=config, source="backtest", period_start=datetime(2024, 1, 1, tzinfo=UTC),
                           period_end=datetime(2024, 2, 1, tzinfo=UTC), trades=40, sharpe=2.0, max_drawdown=0.1)
    rows = {r["name"]: r for r in crit.hold_against(_policy(min_trades=30, min_dsr=0.5, max_pbo=0.5),
                                                     config_measures(config))}
    assert rows["min_trades"]["passed"] is True and rows["min_trades"]["value"] == 40
    assert rows["min_dsr"]["passed"] is None and rows["max_pbo"]["passed"] is None


def test_days_in_stage_counts_from_entering_the_stage(alice, make_config):
    config = make_config(alice)
    policy = _policy(min_days_in_stage=14)
    later = config.created_at + timedelta(days=14, minutes=1)
    [early] = crit.hold_against(policy, config_measures(config, now=config.created_at + timedelta(days=13)))
    [late] = crit.hold_against(policy, config_measures(config, now=later))
    assert early["passed"] is False and 12.99 < early["value"] < 13.01
    assert late["passed"] is True and late["value"] > 14


def test_live_drawdown_from_the_stage_deployments_equity(alice, make_config, paper_account):
    calm, falling = make_config(alice, stage="paper", name="calm"), make_config(alice, stage="paper", name="falling")
    account = paper_account(alice)
    plant_equity(active_deployment(calm, account), [1000, 1050, 1020, 1100])  # worst fall 30/1050 = 2.86 %
    plant_equity(active_deployment(falling, account), [1000, 1200, 900, 950])  # 300/1200 = 25 %
    policy = GraduationPolicy(kind="demote", from_stage="paper", to_stage="validation", max_live_drawdown=0.2)
    [ok] = crit.hold_against(policy, config_measures(calm))
    [ko] = crit.hold_against(policy, config_measures(falling))
    assert ok["passed"] is True and ok["value"] == pytest.approx(30 / 1050, abs=1e-6)
    assert ko["passed"] is False and ko["value"] == pytest.approx(0.25, abs=1e-6)
    assert crit.verdict(policy, [ok]) is False and crit.verdict(policy, [ko]) is True  # demotion: any failing


@pytest.mark.parametrize("name, measure, threshold, good, bad", [
    ("max_tracking_error", "tracking_error", 0.05, 0.02, 0.08),
    ("min_trades_in_stage", "trades_in_stage", 20, 20, 19),
])
def test_trading_measured_criteria_compare_the_value_trading_reports(name, measure, threshold, good, bad):
    """Tracking error and trades in stage come from trading's measures; the comparison is the same."""
    policy = _policy(**{name: threshold})
    [ok] = crit.hold_against(policy, {"values": {measure: good}})
    [ko] = crit.hold_against(policy, {"values": {measure: bad}})
    [unknown] = crit.hold_against(policy, {"values": {measure: None}})
    assert (ok["passed"], ko["passed"], unknown["passed"]) == (True, False, None)
    assert unknown["note"] == "not measured"


def test_unmeasured_trading_criteria_neither_promote_nor_demote(alice, make_config, paper_account):
    config = make_config(alice, stage="paper")
    active_deployment(config, paper_account(alice))
    measures = config_measures(config)
    promote = _policy(min_trades_in_stage=1, max_tracking_error=0.1)
    demote = GraduationPolicy(kind="demote", from_stage="paper", to_stage="validation", max_tracking_error=0.1,
                              max_live_drawdown=0.2)
    assert crit.verdict(promote, crit.hold_against(promote, measures)) is False
    assert crit.verdict(demote, crit.hold_against(demote, measures)) is False


def test_a_policy_without_thresholds_never_acts():
    policy = _policy()
    assert crit.hold_against(policy, {"values": {"trades": 1000}}) == []
    assert crit.verdict(policy, []) is False


def test_default_policies_come_from_the_data_migration(db):
    policies = {(p.kind, p.from_stage): p for p in GraduationPolicy.objects.all()}
    assert set(policies) == {("promote", "discovery"), ("promote", "validation"), ("promote", "paper"),
                             ("promote", "testnet"), ("demote", "validation"), ("demote", "paper"),
                             ("demote", "testnet"), ("demote", "live")}
    assert policies[("promote", "testnet")].to_stage == "live" and policies[("promote", "testnet")].requires_approval
    assert policies[("demote", "paper")].max_live_drawdown is not None
