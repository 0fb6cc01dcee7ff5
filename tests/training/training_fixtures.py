"""Training fixtures: a longer wave market, a run factory, and closing optuna's connections
(they are pooled outside Django; an open one would block dropping the test database)."""
from __future__ import annotations

import pytest
import redis
from django.conf import settings

from apps.marketdata import services as md

from .conftest import MIN, T0, ms_dt, wave_candles

BARS = 4000
END = T0 + BARS * MIN
BODY_TIMES = {"start": ms_dt(T0).isoformat(), "end": ms_dt(END).isoformat()}


def delete_optuna_journals() -> None:
    """Training runs keep their optuna journal in this test slot's Redis database; drop them."""
    if settings.REDIS_URL:
        client = redis.Redis.from_url(settings.REDIS_URL)
        keys = list(client.scan_iter("tradepulse:optuna:*"))
        if keys:
            client.delete(*keys)
        client.close()


@pytest.fixture(autouse=True)
def _optuna_connections_closed():
    yield
    delete_optuna_journals()


@pytest.fixture
def training_market(db):
    exchange = md.exchange_get_or_create(name="Test files")
    market = md.market_get_or_create_for_import(exchange=exchange, symbol="WAV/USD", amount_step="0.001")
    md.candles_ingest(market=market, timeframe="1m", rows=wave_candles(BARS), source="test")
    return market


def training_kwargs(market, **overrides) -> dict:
    kwargs = dict(market=market, timeframe="1m", strategy_key="sma_cross", start=ms_dt(T0), end=ms_dt(END),
                  objective="sharpe", min_trades=3, sampler="tpe", n_trials=12, folds=3, holdout_share=0.2,
                  seed=7, n_workers=2, top_n=3, fee=0.0005)
    kwargs.update(overrides)
    return kwargs
