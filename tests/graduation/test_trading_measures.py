"""Graduation reads trading's own measures of a paper deployment that really traded (engine loop,
PaperBroker, stored candles): trades in stage are its closed round trips, tracking error is its
PnL gap to a replay of the same bars over its capital, and a gap above the policy demotes it."""
from __future__ import annotations

import pytest

from apps.graduation import services
from apps.graduation.models import GraduationPolicy
from apps.graduation.selectors import config_measures
from apps.marketdata import services as md
from apps.strategies.models import StrategyConfig
from apps.trading import services as trading
from tests.trading.test_engine_loop import FUTURE, HISTORY, HOUR, part, setup, tick  # noqa: F401


@pytest.fixture
def traded(setup):  # noqa: F811
    """The paper deployment of a config in the paper stage, run bar by bar with a pause the replay
    does not have (so live and replay differ by the trades it missed)."""
    candles, market, deployment, start = setup["candles"], setup["market"], setup["deployment"], setup["start"]
    StrategyConfig.objects.filter(pk=deployment.config_id).update(stage="paper")  # it was promoted to paper
    trading.deployment_activate(deployment=deployment, reason="go")
    tick(deployment, start + HISTORY * HOUR + 5_000)
    for k in range(HISTORY, HISTORY + FUTURE):
        if k == HISTORY + 40:
            trading.deployment_pause(deployment=deployment, reason="a pause the replay does not have")
        if k == HISTORY + 140:
            trading.deployment_activate(deployment=deployment, reason="back")
        md.candles_ingest(market=market, timeframe="1h", rows=part(candles, k, k + 1), source="test")
        tick(deployment, start + (k + 1) * HOUR + 5_000)
    deployment.refresh_from_db()
    return deployment


def test_trades_and_tracking_error_come_from_the_deployment_and_its_replay(traded):
    config = StrategyConfig.objects.get(pk=traded.config_id)
    report = trading.deployment_tracking_error(traded)
    measures = config_measures(config)
    assert measures["values"]["trades_in_stage"] == report["live_trades"] > 0
    expected = abs(report["pnl"]["difference"]) / float(traded.capital)
    assert expected > 0 and measures["values"]["tracking_error"] == pytest.approx(expected, abs=1e-6)
    assert measures["evidence"]["tracking_error"]["missed"] == len(report["missed"]) >= 1
    assert measures["values"]["live_drawdown"] is not None  # from the snapshots each tick stored


def test_tracking_error_above_the_policy_demotes_and_pauses(traded, olivia):
    config = StrategyConfig.objects.get(pk=traded.config_id)
    measured = config_measures(config)["values"]["tracking_error"]
    policy = GraduationPolicy.objects.get(kind="demote", from_stage="paper")
    services.policy_update(policy=policy, actor=olivia, reason="test: tighter than what this deployment shows",
                           max_tracking_error=measured / 2, max_live_drawdown=None)
    decision = services.config_evaluate(config=config)
    assert decision.outcome == "demote" and decision.to_stage == "validation"
    [te] = [c for c in decision.criteria if c["name"] == "max_tracking_error" and c["kind"] == "demote"]
    assert te["passed"] is False and te["value"] == pytest.approx(measured, abs=1e-6)
    traded.refresh_from_db()
    assert traded.state == "paused" and "Tracking error vs replay" in traded.state_reason


def test_the_lineage_page_shows_the_deployments_trades_and_tracking(traded, client, alice):
    client.force_login(alice)
    report = trading.deployment_tracking_error(traded)
    page = client.get(f"/graduation/configs/{traded.config_id}/").content.decode()
    assert f'data-deployment="{traded.pk}"' in page
    assert f'{report["matched"]}/{report["replay_trades"]} matched, {len(report["missed"])} missed' in page
    assert f'<td class="num" data-trades>{report["live_trades"]}</td>' in page
