"""Backtest runs end to end: create → worker → stored trades, metrics and equity; refusals; reproducibility."""
from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from apps.backtests import services
from quant.engine import EngineConfig, run as engine_run, trades_as_records
from apps.backtests.models import BacktestRun
from quant.strategies import Bars, get_strategy
from apps.strategies.models import Source, StrategyConfig
from tradepulse.core.jobs import JobState

from .conftest import MIN, T0, ms_dt, wave_candles

PARAMS = {"fast": 10, "slow": 30}


def create(owner, market, django_capture_on_commit_callbacks, **overrides):
    kwargs = dict(owner=owner, market=market, timeframe="1m", strategy_key="sma_cross", parameters=PARAMS,
                  start=ms_dt(T0), end=ms_dt(T0 + 1000 * MIN), fee=0.001, slippage=0.0005, stop_loss=0.02)
    kwargs.update(overrides)
    with django_capture_on_commit_callbacks(execute=True):
        run = services.backtest_create(**kwargs)
    run.refresh_from_db()
    return run


def test_run_stores_exactly_what_the_engine_computes(alice, market, django_capture_on_commit_callbacks, published):
    run = create(alice, market, django_capture_on_commit_callbacks)
    assert run.state == JobState.SUCCEEDED, run.error
    candles = wave_candles(1000)
    bars = Bars(candles.time, candles.open, candles.high, candles.low, candles.close, candles.volume, "1m")
    expected = engine_run(bars, get_strategy("sma_cross").signals(bars, PARAMS),
                          EngineConfig(fee=0.001, slippage=0.0005, stop_loss=0.02, amount_step=0.001))  # the market's step
    records = trades_as_records(expected)
    assert len(records) > 5
    stored = list(run.trades.order_by("number"))
    assert [t.pnl for t in stored] == pytest.approx([r["pnl"] for r in records], abs=1e-9)
    assert [t.exit_reason for t in stored] == [r["exit_reason"] for r in records]
    assert run.final_equity == pytest.approx(expected.final_equity, abs=1e-9)
    assert run.metrics["trade_count"] == len(records)
    assert run.candle_count == 1000 and len(run.fingerprint) == 64
    time, equity = run.equity_curve.unpack()
    assert len(equity) == 1000 and time[0] == T0 and time[-1] == T0 + 999 * MIN
    assert equity[-1] == pytest.approx(run.final_equity)
    assert set(run.timings) >= {"load_s", "signals_s", "engine_s", "store_s", "total_s"}
    types = [m["type"] for _, m in published]
    assert types[0] == "backtests.run.created" and "backtests.run.progress" in types and types[-1] == "backtests.run.finished"


def test_same_inputs_give_identical_results(alice, market, django_capture_on_commit_callbacks):
    a = create(alice, market, django_capture_on_commit_callbacks)
    b = create(alice, market, django_capture_on_commit_callbacks)
    assert a.fingerprint == b.fingerprint and a.metrics == b.metrics and a.final_equity == b.final_equity
    assert list(a.trades.values_list("pnl", flat=True)) == list(b.trades.values_list("pnl", flat=True))


def test_range_with_gaps_is_refused_naming_the_gap(alice, gappy_market, django_capture_on_commit_callbacks):
    with pytest.raises(ValidationError) as err:
        create(alice, gappy_market, django_capture_on_commit_callbacks)
    message = " ".join(err.value.messages)
    assert "1 gap(s)" in message and "(30 bars)" in message
    assert "2023-11-15 04:40" in message  # bar 400 after 22:00
    assert not BacktestRun.objects.exists()


def test_gaps_allowed_on_request_are_recorded(alice, gappy_market, django_capture_on_commit_callbacks):
    run = create(alice, gappy_market, django_capture_on_commit_callbacks, allow_gaps=True)
    assert run.state == JobState.SUCCEEDED
    assert run.gaps == [{"start": T0 + 400 * MIN, "end": T0 + 430 * MIN, "bars": 30}]
    assert run.candle_count == 970


@pytest.mark.parametrize("overrides,field,text", [
    ({"parameters": {"fast": 50, "slow": 20}}, "parameters", "fast"),
    ({"strategy_key": "no_such"}, "strategy_key", "sma_cross"),
    ({"fee": 1.5}, "fee", "fee"),
    ({"sizing": "risk", "size_value": 0.01, "stop_loss": None}, "stop_loss", "Risk sizing needs a stop"),
    ({"start": ms_dt(T0 + 2000 * MIN), "end": ms_dt(T0 + 3000 * MIN)}, "range", "No candles stored"),
])
def test_bad_input_is_refused_with_a_clear_error(alice, market, django_capture_on_commit_callbacks, overrides, field,
                                                 text):
    with pytest.raises(ValidationError) as err:
        create(alice, market, django_capture_on_commit_callbacks, **overrides)
    assert text in " ".join(err.value.messages)
    assert not BacktestRun.objects.exists()


def test_cancel_a_queued_run(alice, market):
    run = services.backtest_create(owner=alice, market=market, timeframe="1m", strategy_key="sma_cross",
                                   start=ms_dt(T0), end=ms_dt(T0 + 1000 * MIN), enqueue=False)
    services.backtest_cancel(run=run, reason="changed my mind")
    run.refresh_from_db()
    assert run.state == JobState.CANCELLED
    assert services.backtest_execute(run.pk) is None  # a late delivery does nothing
    with pytest.raises(ValidationError, match="already cancelled"):
        services.backtest_cancel(run=run)


def test_save_as_config_keeps_provenance(alice, market, django_capture_on_commit_callbacks):
    run = create(alice, market, django_capture_on_commit_callbacks)
    config = services.backtest_save_as_config(run=run, owner=alice, name="wave rider")
    assert StrategyConfig.objects.get(pk=config.pk).parameters == {"fast": 10, "slow": 30}
    assert config.source == Source.BACKTEST and config.provenance == {"backtest_run": run.pk}
    assert config.stage == "discovery" and config.metrics["backtest"]["trade_count"] == run.metrics["trade_count"]
