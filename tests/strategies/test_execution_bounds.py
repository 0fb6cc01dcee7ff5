"""Every execution setting has a finite, stated upper bound (apps/strategies/execution.py), so no
absurd value (1e308) reaches the engine, overflows its results to infinity and fails to store
(Infinity is not valid JSON in PostgreSQL). The API schema carries the same bounds."""
from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator
from drf_spectacular.generators import SchemaGenerator

from apps.backtests.models import BacktestRun
from apps.strategies import services
from apps.strategies.execution import EXECUTION_FIELDS, MAX_AMOUNT, BelowValidator, ExecutionSettings
from apps.strategies.models import StrategyConfig
from tests.backtests.conftest import MIN, T0, ms_dt

FLOAT_FIELDS = [f for f in EXECUTION_FIELDS if ExecutionSettings._meta.get_field(f).get_internal_type() == "FloatField"]


def test_every_number_setting_declares_an_upper_bound():
    # A setting added later without a bound fails here.
    unbounded = [name for name in FLOAT_FIELDS
                 if not any(isinstance(v, (MaxValueValidator, BelowValidator))
                            for v in ExecutionSettings._meta.get_field(name).validators)]
    assert not unbounded, f"give {unbounded} an upper bound in apps/strategies/execution.py"


@pytest.mark.parametrize("name", FLOAT_FIELDS)
def test_1e308_is_refused_by_the_service_naming_the_field(alice, market, name):
    execution = {name: 1e308, **({"sizing": "notional"} if name == "size_value" else {})}
    with pytest.raises(ValidationError) as err:
        services.config_create(owner=alice, strategy_key="sma_cross", market=market, timeframe="1m",
                               execution=execution)
    assert name in err.value.message_dict
    assert not StrategyConfig.objects.exists()


@pytest.mark.parametrize("name", FLOAT_FIELDS)
def test_1e308_is_a_400_from_the_backtest_api_and_nothing_is_stored(api, alice, market, name):
    body = {"strategy_key": "sma_cross", "market": market.pk, "timeframe": "1m", "start": ms_dt(T0).isoformat(),
            "end": ms_dt(T0 + 1000 * MIN).isoformat(), name: 1e308,
            **({"sizing": "notional"} if name == "size_value" else {})}
    response = api(alice).post("/api/v1/backtests/", body, format="json")
    assert response.status_code == 400, response.json()
    assert name in response.json()["error"]["detail"]
    assert not BacktestRun.objects.exists()


def test_the_largest_allowed_amounts_still_give_a_storable_result(alice, market):
    from apps.backtests import services as backtests

    run = backtests.backtest_create(owner=alice, market=market, timeframe="1m", strategy_key="sma_cross",
                                    start=ms_dt(T0), end=ms_dt(T0 + 1000 * MIN), enqueue=False, cash=MAX_AMOUNT,
                                    sizing="notional", size_value=MAX_AMOUNT)
    backtests.backtest_execute(run.pk)
    run.refresh_from_db()
    assert run.state == "succeeded", run.error
    assert run.metrics["trade_count"] > 0


def test_the_schema_states_each_bound():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    props = schema["components"]["schemas"]["BacktestCreateRequest"]["properties"]
    missing = [name for name in FLOAT_FIELDS if "maximum" not in props[name]]
    assert not missing, f"no maximum in the schema for {missing}"
    assert props["amount_step"]["maximum"] == MAX_AMOUNT
