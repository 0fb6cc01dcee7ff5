"""The one rule (tradepulse.core.permissions), decided in issue 9: operators see everything and
operate work (cancel, retry), but may not edit or delete another user's research; the owner can
share change rights explicitly; Django superusers can do everything."""
from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from apps.accounts.services import object_share
from apps.backtests import services as backtests
from apps.strategies.models import StrategyConfig
from tests.backtests.conftest import MIN, T0, market, ms_dt  # noqa: F401
from tradepulse.core.permissions import can


@pytest.fixture
def config(market, alice):  # noqa: F811
    run = backtests.backtest_create(owner=alice, market=market, timeframe="1m", start=ms_dt(T0),
                                    end=ms_dt(T0 + 1000 * MIN), strategy_key="sma_cross",
                                    parameters={"fast": 10, "slow": 30}, enqueue=False)
    backtests.backtest_execute(run.pk)
    run.refresh_from_db()
    return backtests.backtest_save_as_config(run=run, owner=alice, name="alice's idea")


def test_an_operator_sees_but_cannot_edit_or_delete_anothers_config(api, olivia, config):
    client = api(olivia)
    url = f"/api/v1/strategy-configs/{config.pk}/"
    assert client.get(url).status_code == 200
    response = client.patch(url, {"notes": "operator was here"}, format="json")
    assert response.status_code == 403
    assert client.delete(url).status_code == 403
    config.refresh_from_db()
    assert config.notes != "operator was here" and StrategyConfig.objects.filter(pk=config.pk).exists()


def test_an_operator_can_cancel_anothers_running_work(api, olivia, market, alice):  # noqa: F811
    run = backtests.backtest_create(owner=alice, market=market, timeframe="1m", start=ms_dt(T0),
                                    end=ms_dt(T0 + 1000 * MIN), strategy_key="sma_cross",
                                    parameters={"fast": 10, "slow": 30}, enqueue=False)
    response = api(olivia).post(f"/api/v1/backtests/{run.pk}/cancel/", {"reason": "runaway"}, format="json")
    assert response.status_code == 200, response.json()
    run.refresh_from_db()
    assert run.state == "cancelled" or run.cancel_requested


def test_an_explicit_share_lets_an_operator_edit(api, olivia, config):
    object_share(obj=config, with_user=olivia, actions=("view", "change"), reason="please tidy the notes")
    response = api(olivia).patch(f"/api/v1/strategy-configs/{config.pk}/", {"notes": "tidied"}, format="json")
    assert response.status_code == 200, response.json()


def test_the_rule_in_one_place(olivia, alice, config):
    root = get_user_model().objects.create_superuser("root", "root@example.test", "x-very-long-password-1")
    assert can(olivia, "view", config) and can(olivia, "operate", config)
    assert not can(olivia, "change", config) and not can(olivia, "delete", config)
    assert can(alice, "change", config) and can(alice, "operate", config)
    assert can(root, "change", config) and can(root, "delete", config)


def test_the_admin_does_not_let_an_operator_edit_anothers_config(client, olivia, config):
    client.force_login(olivia)
    page = client.get(f"/admin/strategies/strategyconfig/{config.pk}/change/")
    assert page.status_code == 200  # viewing is fine
    client.post(f"/admin/strategies/strategyconfig/{config.pk}/change/", {"name": "renamed", "notes": "x"})
    config.refresh_from_db()
    assert config.name == "alice's idea"
