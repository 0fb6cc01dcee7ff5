"""Graduation fixtures: a file-source market, configs with typed evidence, a paper account, and
helpers that plant deployments and equity snapshots (built for the test, never fabricated by code)."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from apps.strategies.services import config_create, config_evidence_record
from apps.trading.models import PortfolioSnapshot
from apps.trading.services.accounts import account_create
from apps.trading.services.deployments import deployment_activate, deployment_create
from tests.owned_factories import _file_market


@pytest.fixture
def market(db):
    return _file_market()


@pytest.fixture
def make_config(market):
    def make(owner, *, stage="discovery", name="trend", **kwargs):
        return config_create(owner=owner, strategy_key="sma_cross", market=market, timeframe="1m",
                             parameters={"fast": 10, "slow": 30}, name=name, stage=stage, **kwargs)

    return make


def research(config, **figures):
    """A training out-of-sample evidence row with the given figures (defaults: a good candidate)."""
    row = {"trades": 80, "sharpe": 1.4, "max_drawdown": 0.12, "total_return": 0.3, "oos_sharpe": 1.2, "dsr": 0.97,
           "pbo": 0.1, **figures}
    return config_evidence_record(config=config, source="training_oos", period_start=datetime(2024, 1, 1, tzinfo=UTC),
                                  period_end=datetime(2024, 6, 1, tzinfo=UTC), fingerprint="ab" * 32, **row)


@pytest.fixture
def paper_account(market):
    def make(owner, name="paper", balance="10000"):
        return account_create(owner=owner, name=name, exchange=market.exchange, mode="paper",
                              paper_balance=Decimal(balance), paper_currency="USD")

    return make


def active_deployment(config, account, capital="1000"):
    d = deployment_create(owner=config.owner, config=config, account=account, capital=Decimal(capital))
    return deployment_activate(deployment=d, reason="test")


def plant_equity(deployment, equities, start=None):
    """Portfolio snapshots of `deployment` with these equities, one hour apart."""
    start = start or timezone.now() - timedelta(hours=len(equities))
    for i, eq in enumerate(equities):
        PortfolioSnapshot.objects.create(deployment=deployment, account=deployment.account,
                                         time=start + timedelta(hours=i), equity=Decimal(str(eq)),
                                         cash=Decimal(str(eq)), positions_value=Decimal(0))
