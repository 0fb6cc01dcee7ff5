"""A config saved from a backtest carries the run's full execution settings and code version:
backtesting the config again gives the original run's trades exactly."""
from __future__ import annotations

import pytest

from apps.backtests import services
from apps.strategies.execution import EXECUTION_FIELDS
from apps.strategies.models import StrategyConfig
from quant.strategies.provenance import code_version
from tradepulse.core.jobs import JobState

from .conftest import MIN, T0, ms_dt

# Every execution setting away from its default: risk sizing, stops, target, trailing stop,
# shorts, costs, rounding. On the wave data these exit by take-profit and by trailing stop.
SETTINGS = dict(cash=5000.0, fee=0.0015, slippage=0.0005, sizing="risk", size_value=0.02, amount_step=0.001,
                min_amount=0.01, stop_loss=0.004, take_profit=0.08, trailing_stop=0.01, allow_short=True,
                price_step=0.01, min_notional=5.0)
RANGE = dict(timeframe="1m", start=ms_dt(T0), end=ms_dt(T0 + 1000 * MIN))


def run_backtest(django_capture_on_commit_callbacks, **kwargs):
    with django_capture_on_commit_callbacks(execute=True):
        run = services.backtest_create(**kwargs)
    run.refresh_from_db()
    assert run.state == JobState.SUCCEEDED, run.error
    return run


def trades(run) -> list[tuple]:
    return list(run.trades.order_by("number").values_list(
        "side", "entry_time", "exit_time", "entry_price", "exit_price", "size", "fees", "pnl", "exit_reason"))


def test_config_from_a_backtest_reproduces_its_trades_exactly(alice, market, django_capture_on_commit_callbacks):
    original = run_backtest(django_capture_on_commit_callbacks, owner=alice, market=market, strategy_key="sma_cross",
                            parameters={"fast": 10, "slow": 30}, **RANGE, **SETTINGS)
    reasons = {t[-1] for t in trades(original)}
    assert {"take_profit", "trailing_stop"} <= reasons and {t[0] for t in trades(original)} == {"long", "short"}

    config = services.backtest_save_as_config(run=original, owner=alice, name="with its stops")
    stored = StrategyConfig.objects.get(pk=config.pk)
    assert stored.execution_settings() == SETTINGS
    assert stored.code_version == original.code_version == code_version("sma_cross")

    again = run_backtest(django_capture_on_commit_callbacks, owner=alice, market=market, config=stored, **RANGE)
    assert {f: getattr(again, f) for f in EXECUTION_FIELDS} == SETTINGS
    assert trades(again) == trades(original) and len(trades(again)) >= 10
    assert again.final_equity == original.final_equity and again.fingerprint == original.fingerprint

    # What the config would have traded before it carried its settings: other trades entirely.
    bare = run_backtest(django_capture_on_commit_callbacks, owner=alice, market=market, strategy_key="sma_cross",
                        parameters={"fast": 10, "slow": 30}, **RANGE)
    assert trades(bare) != trades(original)


def test_settings_given_with_a_config_override_its_own_one_by_one(alice, market, django_capture_on_commit_callbacks):
    original = run_backtest(django_capture_on_commit_callbacks, owner=alice, market=market, strategy_key="sma_cross",
                            parameters={"fast": 10, "slow": 30}, **RANGE, **SETTINGS)
    config = services.backtest_save_as_config(run=original, owner=alice)
    run = run_backtest(django_capture_on_commit_callbacks, owner=alice, market=market, config=config, fee=0.0, **RANGE)
    assert run.fee == 0.0 and run.stop_loss == 0.004 and run.sizing == "risk" and run.allow_short is True


def test_api_shows_the_settings_and_code_version_of_run_and_saved_config(api, alice, market,
                                                                         django_capture_on_commit_callbacks):
    body = {"strategy_key": "sma_cross", "parameters": {"fast": 10, "slow": 30}, "market": market.pk, "timeframe": "1m",
            "start": RANGE["start"].isoformat(), "end": RANGE["end"].isoformat(), **SETTINGS}
    with django_capture_on_commit_callbacks(execute=True):
        created = api(alice).post("/api/v1/backtests/", body, format="json")
    assert created.status_code == 201, created.json()
    run = api(alice).get(f"/api/v1/backtests/{created.json()['id']}/").json()
    assert run["code_version"] == code_version("sma_cross") and len(run["code_version"]) == 64
    assert {f: run[f] for f in EXECUTION_FIELDS} == SETTINGS
    saved = api(alice).post(f"/api/v1/backtests/{run['id']}/save-as-config/", {"name": "keeper"}, format="json")
    assert saved.status_code == 201, saved.json()
    config = api(alice).get(f"/api/v1/strategy-configs/{saved.json()['id']}/").json()
    assert {f: config[f] for f in EXECUTION_FIELDS} == SETTINGS
    assert config["code_version"] == run["code_version"]


@pytest.mark.parametrize("field,value,text", [
    ("fee", 0.06, "less than or equal to 0.05"),
    ("slippage", -0.001, "greater than or equal to 0"),
    ("stop_loss", 1.0, "less than 1"),
    ("take_profit", 0, "greater than 0"),
    ("sizing", "kelly", "not a valid choice"),
])
def test_out_of_bounds_settings_answer_400_naming_the_field(api, alice, market, field, value, text):
    body = {"strategy_key": "sma_cross", "market": market.pk, "timeframe": "1m", "start": RANGE["start"].isoformat(),
            "end": RANGE["end"].isoformat(), field: value}
    response = api(alice).post("/api/v1/backtests/", body, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["message"].startswith(f"{field}:") and text in response.json()["error"]["message"]
