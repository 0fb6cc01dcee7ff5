"""Promotion from paper to testnet starts the testnet deployment on the owner's testnet account,
its capital a policy fraction of the balance the exchange reports (the local simulator through
the real ccxt client); the paper deployment is left to the owner."""
from __future__ import annotations

from decimal import Decimal

from apps.graduation import services
from apps.graduation.models import GraduationPolicy
from apps.strategies.models import StrategyConfig
from apps.trading.models import Deployment
from tests.trading.conftest import binance, btc, config, fast_retries, sim, testnet  # noqa: F401


def test_promotion_to_testnet_deploys_on_the_testnet_account(alice, olivia, config, testnet, sim):  # noqa: F811
    StrategyConfig.objects.filter(pk=config.pk).update(stage="paper")  # it was promoted to paper
    sim.set_balance("USDT", "20000")
    policy = GraduationPolicy.objects.get(kind="promote", from_stage="paper")
    services.policy_update(policy=policy, actor=olivia, reason="test: no paper record needed",
                           min_days_in_stage=0, min_trades_in_stage=None, max_tracking_error=None,
                           max_live_drawdown=None, deployment_capital_fraction=0.25)
    decision = services.config_evaluate(config=StrategyConfig.objects.get(pk=config.pk))
    assert decision.outcome == "promote" and (decision.from_stage, decision.to_stage) == ("paper", "testnet")
    deployment = Deployment.objects.get(config=config)
    assert decision.deployment == deployment and deployment.account == testnet and deployment.state == "active"
    assert deployment.capital == Decimal("5000")  # 0.25 × 20000 USDT free on the exchange
    assert StrategyConfig.objects.get(pk=config.pk).stage == "testnet"
