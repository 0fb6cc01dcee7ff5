"""Real money only for graduated configs: a deployment on a live account needs its config on the
live stage (reached through a live request a second person approved), at creation and at every
activation (a demoted config's live deployment cannot be switched back on by its owner)."""
from __future__ import annotations

from decimal import Decimal

import pytest

from apps.graduation.services import config_demote
from apps.strategies.services import config_create
from apps.trading import services
from apps.trading.models import Deployment, Mode
from tests.trading.conftest import API_KEY, API_SECRET


@pytest.fixture
def live(alice, binance, btc):
    account = services.account_create(owner=alice, name="Binance live", exchange=binance, mode=Mode.LIVE,
                                      api_key=API_KEY, api_secret=API_SECRET, reason="test")
    services.account_test_connection(account=account)
    account.refresh_from_db()
    return account


def test_an_ungraduated_config_cannot_be_deployed_on_a_live_account(api, alice, config, live):
    assert config.stage == "discovery"
    r = api(alice).post("/api/v1/trading/deployments/", {"config": config.pk, "account": live.pk,
                                                         "capital": "100"}, format="json")
    assert r.status_code == 400, r.content
    assert "discovery" in r.content.decode() and "live" in r.content.decode()
    assert not Deployment.objects.filter(account=live).exists()


def test_a_demoted_configs_live_deployment_stays_off(api, alice, olivia, btc, live):
    config = config_create(owner=alice, strategy_key="sma_cross", market=btc, timeframe="1h",
                           parameters={"fast": 5, "slow": 20}, name="graduated", stage="live")
    r = api(alice).post("/api/v1/trading/deployments/", {"config": config.pk, "account": live.pk,
                                                         "capital": "100"}, format="json")
    assert r.status_code == 201, r.content
    d = Deployment.objects.get(pk=r.json()["id"])
    services.deployment_activate(deployment=d, reason="go")
    config_demote(config=config, actor=olivia, reason="tracking error", to_stage="testnet")
    d.refresh_from_db()
    assert d.state == "paused"
    r = api(alice).post(f"/api/v1/trading/deployments/{d.pk}/activate/", {"reason": "back on"}, format="json")
    assert r.status_code == 400, r.content
    assert "testnet" in r.content.decode()
    d.refresh_from_db()
    assert d.state == "paused"
