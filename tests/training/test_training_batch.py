"""Training several strategies × markets × timeframes in one request: all checked first, one run each."""
from __future__ import annotations

import pytest

from apps.training.models import TrainingRun
from apps.marketdata import services as md

from .conftest import wave_candles
from .training_fixtures import BODY_TIMES, _optuna_connections_closed, training_market  # noqa: F401


@pytest.fixture
def second_market(training_market):
    market = md.market_get_or_create_for_import(exchange=training_market.exchange, symbol="TWO/USD")
    md.candles_ingest(market=market, timeframe="1m", rows=wave_candles(4000, period=200), source="test")
    return market


def body(**extra):
    return {**BODY_TIMES, "objective": "sharpe", "min_trades": 3, "n_trials": 6, "folds": 2, "holdout_share": 0.2,
            "seed": 7, "n_workers": 1, "top_n": 2, "fee": 0.0005, **extra}


def test_batch_creates_one_run_per_combination_and_runs_them(api, alice, training_market, second_market,
                                                            django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = api(alice).post("/api/v1/training-runs/batch/", body(
            # rsi_reversion: a recursive indicator, whose converged warm-up (up to 1475 bars for period 100) the
            # 4000-bar fixtures hold; ema_cross would need 3954 (slow up to 500) and does not fit them.
            strategy_keys=["sma_cross", "rsi_reversion"], markets=[training_market.pk, second_market.pk],
            timeframes=["1m"]), format="json")
    assert response.status_code == 201, response.json()
    runs = TrainingRun.objects.filter(pk__in=[r["id"] for r in response.json()])
    combos = {(r.strategy_key, r.market.symbol, r.timeframe) for r in runs}
    assert combos == {(s, m, "1m") for s in ("sma_cross", "rsi_reversion") for m in ("WAV/USD", "TWO/USD")}
    assert len({r.batch for r in runs}) == 1 and runs[0].batch
    assert {r.state for r in runs} == {"succeeded"} and all(r.trials.count() == 6 * 3 for r in runs)  # 2 folds + final
    listed = api(alice).get(f"/api/v1/training-runs/?batch={runs[0].batch}").json()
    assert listed["count"] == 4


def test_batch_is_all_or_nothing_and_names_the_failing_combination(api, alice, training_market, second_market):
    response = api(alice).post("/api/v1/training-runs/batch/", body(
        strategy_keys=["sma_cross"], series=[{"market": training_market.pk, "timeframe": "1m"},
                                             {"market": second_market.pk, "timeframe": "1h"}]), format="json")
    assert response.status_code == 400
    message = response.json()["error"]["message"]
    assert "sma_cross on TWO/USD 1h" in message and "No candles stored" in message
    assert "WAV/USD" not in message
    assert not TrainingRun.objects.exists()


def test_batch_needs_series_or_markets_and_timeframes(api, alice, training_market):
    response = api(alice).post("/api/v1/training-runs/batch/", body(strategy_keys=["sma_cross"]), format="json")
    assert response.status_code == 400 and "series" in response.json()["error"]["message"]
