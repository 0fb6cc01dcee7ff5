"""The one definition of execution settings: bounds, rules between fields, the engine's
configuration built from them, configs carrying them, and the migration that filled them."""
from __future__ import annotations

import importlib
from dataclasses import fields

import pytest
from django.apps import apps as django_apps
from django.core.exceptions import ValidationError

from apps.backtests import services as backtests
from apps.strategies import services
from apps.strategies.execution import EXECUTION_FIELDS
from apps.strategies.models import StrategyConfig
from quant.engine import EngineConfig
from quant.strategies.provenance import code_version
from tests.backtests.conftest import MIN, T0, ms_dt


def test_every_engine_setting_is_an_execution_setting():
    # When the engine gains a setting (e.g. price_step), add it to apps/strategies/execution.py:
    # runs, configs and deployments then carry it, and the API takes it.
    missing = {f.name for f in fields(EngineConfig)} - set(EXECUTION_FIELDS)
    assert not missing, (f"EngineConfig has {sorted(missing)}: declare them in apps/strategies/execution.py "
                         "(ExecutionSettings) and run makemigrations, so runs and configs carry them")
    assert set(EXECUTION_FIELDS) <= {f.name for f in fields(EngineConfig)}


def make(owner, market, **execution):
    return services.config_create(owner=owner, strategy_key="sma_cross", market=market, timeframe="1m",
                                  execution=execution)


def test_config_carries_settings_and_builds_the_engine_config(alice, market):
    config = make(alice, market, fee=0.002, stop_loss=0.03, trailing_stop=0.05, sizing="notional", size_value=2500,
                  allow_short=True)
    config.refresh_from_db()
    assert config.engine_config() == EngineConfig(fee=0.002, stop_loss=0.03, trailing_stop=0.05, sizing="notional",
                                                  size_value=2500, allow_short=True)
    assert config.code_version == code_version("sma_cross")


@pytest.mark.parametrize("execution,field,text", [
    ({"fee": 0.051}, "fee", "less than or equal to 0.05"),
    ({"slippage": 0.2}, "slippage", "less than or equal to 0.05"),
    ({"cash": 0}, "cash", "greater than 0"),
    ({"stop_loss": 1.0}, "stop_loss", "less than 1"),
    ({"trailing_stop": 0}, "trailing_stop", "greater than 0"),
    ({"take_profit": 11}, "take_profit", "less than or equal to 10"),
    ({"sizing": "fraction", "size_value": 1.5}, "size_value", "at most 1"),
    ({"sizing": "risk", "size_value": 0.01}, "stop_loss", "Risk sizing needs a stop"),
    ({"leverage": 3}, "leverage", "Not an execution setting"),
])
def test_out_of_bounds_settings_are_refused_naming_the_field(alice, market, execution, field, text):
    with pytest.raises(ValidationError) as err:
        make(alice, market, **execution)
    assert field in err.value.message_dict and text in " ".join(err.value.message_dict[field])
    assert not StrategyConfig.objects.exists()


def test_api_creates_a_config_with_settings_and_keeps_them_fixed(api, alice, market):
    body = {"name": "x", "strategy_key": "sma_cross", "market": market.pk, "timeframe": "1m", "stop_loss": 0.02,
            "take_profit": 0.05, "fee": 0.0008}
    created = api(alice).post("/api/v1/strategy-configs/", body, format="json")
    assert created.status_code == 201, created.json()
    config = created.json()
    assert (config["stop_loss"], config["take_profit"], config["fee"], config["trailing_stop"]) == (0.02, 0.05, 0.0008,
                                                                                                     None)
    assert config["code_version"] == code_version("sma_cross")
    changed = api(alice).patch(f"/api/v1/strategy-configs/{config['id']}/", {"stop_loss": 0.1}, format="json")
    assert changed.status_code == 400 and "stop_loss" in changed.json()["error"]["message"]
    assert StrategyConfig.objects.get(pk=config["id"]).stop_loss == 0.02
    bad = api(alice).post("/api/v1/strategy-configs/", {**body, "fee": 1}, format="json")
    assert bad.status_code == 400 and bad.json()["error"]["message"].startswith("fee:")


def test_migration_fills_existing_configs_from_their_backtest(alice, market):
    run = backtests.backtest_create(owner=alice, market=market, timeframe="1m", strategy_key="sma_cross",
                                    start=ms_dt(T0), end=ms_dt(T0 + 1000 * MIN), stop_loss=0.02, take_profit=0.04,
                                    fee=0.002, allow_short=True, enqueue=False)
    from_run = make(alice, market)  # as configs were stored before they carried settings
    StrategyConfig.objects.filter(pk=from_run.pk).update(provenance={"backtest_run": run.pk})
    orphan = make(alice, market)
    StrategyConfig.objects.filter(pk=orphan.pk).update(provenance={"backtest_run": 999999})
    migration = importlib.import_module("apps.strategies.migrations.0002_execution_settings")
    migration.fill_from_provenance(django_apps, None)
    from_run.refresh_from_db()
    orphan.refresh_from_db()
    assert from_run.execution_settings() == run.execution_settings()
    assert (from_run.stop_loss, from_run.take_profit, from_run.fee, from_run.allow_short) == (0.02, 0.04, 0.002, True)
    assert orphan.execution_settings() == StrategyConfig().execution_settings()  # the defaults
