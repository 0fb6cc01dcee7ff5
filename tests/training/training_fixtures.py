"""Training fixtures: a longer wave market, a run factory, and closing optuna's connections
(they are pooled outside Django; an open one would block dropping the test database)."""
from __future__ import annotations

import gc

import pytest
from django.db import connection

from apps.training import services as training_services
from apps.marketdata import services as md

from .conftest import MIN, T0, ms_dt, wave_candles

BARS = 4000
END = T0 + BARS * MIN
BODY_TIMES = {"start": ms_dt(T0).isoformat(), "end": ms_dt(END).isoformat()}


def close_optuna_connections() -> None:
    gc.collect()  # pooled engines of studies no longer referenced close their connections
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s "
                           "AND datname = current_database() AND pid <> pg_backend_pid()",
                           [training_services.OPTUNA_APPLICATION_NAME])


@pytest.fixture(autouse=True)
def _optuna_connections_closed(django_db_blocker):
    yield
    with django_db_blocker.unblock():
        close_optuna_connections()


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
